"""MITRE ATT&CK names for the ids rules carry in their Sigma tags.

Sigma tags hold only ids (``attack.t1110``) and tactic slugs (``attack.credential-access``); an alert
needs names too (``threat.technique.name``). Only the techniques wgsiem's rules use are listed: the
rule linter reports a technique missing here, so the table grows with the rules.
"""

from __future__ import annotations

__all__ = ["TACTICS", "TECHNIQUES"]

TACTICS: dict[str, tuple[str, str]] = {
    "reconnaissance": ("TA0043", "Reconnaissance"),
    "resource-development": ("TA0042", "Resource Development"),
    "initial-access": ("TA0001", "Initial Access"),
    "execution": ("TA0002", "Execution"),
    "persistence": ("TA0003", "Persistence"),
    "privilege-escalation": ("TA0004", "Privilege Escalation"),
    "defense-evasion": ("TA0005", "Defense Evasion"),
    "credential-access": ("TA0006", "Credential Access"),
    "discovery": ("TA0007", "Discovery"),
    "lateral-movement": ("TA0008", "Lateral Movement"),
    "collection": ("TA0009", "Collection"),
    "command-and-control": ("TA0011", "Command and Control"),
    "exfiltration": ("TA0010", "Exfiltration"),
    "impact": ("TA0040", "Impact"),
}
"""Sigma tactic tag → (ATT&CK id, name)."""

TECHNIQUES: dict[str, str] = {
    "T1078": "Valid Accounts",
    "T1098": "Account Manipulation",
    "T1110": "Brute Force",
    "T1021": "Remote Services",
    "T1030": "Data Transfer Size Limits",
    "T1046": "Network Service Discovery",
    "T1048": "Exfiltration Over Alternative Protocol",
    "T1133": "External Remote Services",
    "T1498": "Network Denial of Service",
    "T1499": "Endpoint Denial of Service",
    "T1552.004": "Unsecured Credentials: Private Keys",
    "T1557": "Adversary-in-the-Middle",
    "T1562": "Impair Defenses",
    "T1599": "Network Boundary Bridging",
}
"""ATT&CK technique id → name."""

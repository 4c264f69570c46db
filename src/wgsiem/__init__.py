"""wgsiem: WireGuard security visibility.

Collects every signal a WireGuard deployment gives, turns it into normalized ECS security events and
delivers them to the SIEM. See ``docs/architecture.md`` for the data flow.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"

"""A detection rule: a Sigma rule plus wgsiem's metadata and sample events, in one YAML file.

The file *is* a valid Sigma rule, so it exports to any SIEM unchanged; what Sigma has no field for sits
under the ``wgsiem:`` key, which pySigma keeps as a custom attribute and other Sigma tools ignore::

    title: ...            # → rule.name
    id: <uuid>            # → rule.id / rule.uuid
    name: <slug>          # → event.action of the alert (also the Sigma correlation reference)
    status: experimental  # → maturity (experimental | test | stable)
    description, references, author, date, modified, falsepositives, level,
    tags: [attack.<tactic>, attack.tNNNN[.NNN]]   # ATT&CK mapping
    logsource, detection  # standard Sigma
    wgsiem:
      risk_score: 0..100
      entity: [wireguard.peer.public_key, user.name, source.ip]   # first present field wins
      triage: how an analyst confirms or dismisses it
      playbook: the response playbook id it triggers
      samples: {match: [ECS docs], no_match: [ECS docs]}

Loading is strict: every problem of every file is collected into one :class:`ConfigError` with file
locations, so a broken rule never half-loads and the author sees all mistakes at once.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from wgsiem.errors import ConfigError, Location, WgsiemError

from .attack import TACTICS, TECHNIQUES
from .match import Predicate, RuleCompileError, compile_condition

__all__ = [
    "BUILTIN_RULES",
    "DEFAULT_ENTITY_FIELDS",
    "LEVEL_SEVERITY",
    "DetectionRule",
    "load_rule",
    "load_rules",
    "rule_files",
]

BUILTIN_RULES = Path(str(resources.files("wgsiem.detect") / "rules"))
DEFAULT_ENTITY_FIELDS = ("wireguard.peer.public_key", "user.name", "source.ip", "wireguard.peer.abbreviation")
LEVEL_SEVERITY = {"informational": 1, "low": 21, "medium": 47, "high": 73, "critical": 99}
"""Sigma level → ``event.severity`` (Elastic's numeric severities, as the host source's alerts use)."""

_TECHNIQUE_TAG = re.compile(r"^attack\.(t\d{4}(?:\.\d{3})?)$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class DetectionRule:
    """A loaded rule: metadata, the compiled predicate and the samples it promises to (not) match."""

    id: str
    name: str
    title: str
    description: str
    references: tuple[str, ...]
    author: str
    maturity: str
    created: dt.date | None
    updated: dt.date | None
    level: str
    severity: int
    risk_score: float
    techniques: tuple[str, ...]
    tactics: tuple[str, ...]
    false_positives: tuple[str, ...]
    triage: str
    playbook: str
    entity_fields: tuple[str, ...]
    samples_match: tuple[dict[str, Any], ...]
    samples_no_match: tuple[dict[str, Any], ...]
    path: Path
    sigma: SigmaRule
    predicate: Predicate

    def matches(self, doc: dict[str, Any]) -> bool:
        return self.predicate(doc)


def _problem(path: Path, what: str, fix: str | None = None) -> WgsiemError:
    return WgsiemError(what, location=Location(str(path)), fix=fix)


def load_rule(path: Path) -> DetectionRule:
    """Load and compile one rule file; raises :class:`ConfigError` listing every problem in it."""
    problems: list[WgsiemError] = []
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read rule: {e}", location=Location(str(path))) from e
    if not isinstance(raw, dict):
        raise ConfigError("a rule file must hold one YAML mapping", location=Location(str(path)))
    try:
        sigma = SigmaRule.from_yaml(text, collect_errors=True)
    except SigmaError as e:
        raise ConfigError(f"invalid Sigma rule: {e}", location=Location(str(path))) from e
    problems.extend(_problem(path, f"Sigma: {e}") for e in sigma.errors)

    ext = raw.get("wgsiem")
    if not isinstance(ext, dict):
        problems.append(
            _problem(path, "missing the `wgsiem:` block", "add risk_score, triage, playbook, samples")
        )
        ext = {}

    def need(value: Any, what: str) -> Any:
        if value in (None, "", [], {}):
            problems.append(_problem(path, f"missing {what}"))
        return value

    rule_id = str(need(sigma.id, "`id` (a UUID)") or "")
    name = str(need(sigma.name, "`name` (a slug)") or "")
    if name and not _SLUG.match(name):
        problems.append(_problem(path, f"`name` {name!r} is not a lowercase slug ([a-z0-9_])"))
    level = sigma.level.name.lower() if sigma.level else ""
    need(level, "`level`")
    status = sigma.status.name.lower() if sigma.status else ""
    need(status, "`status` (maturity)")

    techniques: list[str] = []
    tactics: list[str] = []
    for tag in sigma.tags:
        if tag.namespace != "attack":
            continue
        text_tag = f"attack.{tag.name}"
        if m := _TECHNIQUE_TAG.match(text_tag):
            tid = m.group(1).upper()
            if tid not in TECHNIQUES:
                problems.append(_problem(path, f"ATT&CK technique {tid} has no name in wgsiem.detect.attack"))
            techniques.append(tid)
        elif tag.name in TACTICS:
            tactics.append(tag.name)
        else:
            problems.append(_problem(path, f"tag {text_tag!r} is neither an ATT&CK technique nor a tactic"))
    if not techniques:
        problems.append(_problem(path, "no ATT&CK technique tag (attack.tNNNN)"))
    if not tactics:
        problems.append(_problem(path, "no ATT&CK tactic tag (attack.<tactic-name>)"))

    risk = ext.get("risk_score")
    if not isinstance(risk, int | float) or isinstance(risk, bool) or not 0 <= risk <= 100:
        problems.append(_problem(path, "wgsiem.risk_score must be a number from 0 to 100"))
        risk = 0
    entity = ext.get("entity", list(DEFAULT_ENTITY_FIELDS))
    if not isinstance(entity, list) or not entity or not all(isinstance(f, str) for f in entity):
        problems.append(_problem(path, "wgsiem.entity must be a non-empty list of field names"))
        entity = list(DEFAULT_ENTITY_FIELDS)
    samples = ext.get("samples") or {}
    match = samples.get("match") if isinstance(samples, dict) else None
    no_match = samples.get("no_match") if isinstance(samples, dict) else None
    for key, docs in (("match", match), ("no_match", no_match)):
        if not isinstance(docs, list) or not docs or not all(isinstance(d, dict) for d in docs):
            problems.append(_problem(path, f"wgsiem.samples.{key} must be a non-empty list of ECS documents"))

    predicate: Predicate = lambda doc: False  # noqa: E731 — replaced below when the rule compiles
    if not sigma.errors:
        try:
            preds = [compile_condition(c.parsed) for c in sigma.detection.parsed_condition]
            predicate = preds[0] if len(preds) == 1 else (lambda doc: any(p(doc) for p in preds))
        except (RuleCompileError, SigmaError) as e:
            problems.append(_problem(path, f"cannot evaluate detection: {e}"))

    fields = {
        "description": sigma.description,
        "references": sigma.references,
        "author": sigma.author,
        "date": sigma.date,
        "falsepositives": sigma.falsepositives,
        "wgsiem.triage": ext.get("triage"),
        "wgsiem.playbook": ext.get("playbook"),
    }
    for what, value in fields.items():
        need(value, f"`{what}`")

    if problems:
        raise ConfigError(
            f"{len(problems)} problem(s) in rule", location=Location(str(path)), problems=problems
        )
    return DetectionRule(
        id=rule_id,
        name=name,
        title=sigma.title,
        description=str(sigma.description),
        references=tuple(sigma.references),
        author=str(sigma.author),
        maturity=status,
        created=sigma.date,
        updated=sigma.modified,
        level=level,
        severity=LEVEL_SEVERITY[level],
        risk_score=float(risk),
        techniques=tuple(techniques),
        tactics=tuple(tactics),
        false_positives=tuple(sigma.falsepositives),
        triage=str(ext["triage"]).strip(),
        playbook=str(ext["playbook"]),
        entity_fields=tuple(entity),
        samples_match=tuple(match or ()),
        samples_no_match=tuple(no_match or ()),
        path=path,
        sigma=sigma,
        predicate=predicate,
    )


def rule_files(directory: Path) -> list[Path]:
    """Rule files under ``directory`` (``*.yaml`` and ``*.yml``, recursively), in a stable order."""
    return sorted(p for pattern in ("*.yaml", "*.yml") for p in directory.rglob(pattern) if p.is_file())


def load_rules(directories: list[Path], *, disabled: frozenset[str] = frozenset()) -> list[DetectionRule]:
    """Every rule under ``directories``; all problems of all files in one :class:`ConfigError`.

    ``disabled`` holds rule ids or names to skip. Two rules with the same id or name are an error.
    """
    problems: list[WgsiemError] = []
    rules: list[DetectionRule] = []
    seen: dict[str, Path] = {}
    for directory in directories:
        if not directory.is_dir():
            problems.append(_problem(directory, "rule directory does not exist"))
            continue
        for path in rule_files(directory):
            try:
                rule = load_rule(path)
            except ConfigError as e:
                problems.extend(e.problems or [e])
                continue
            for key in (rule.id, rule.name):
                if key in seen:
                    problems.append(_problem(path, f"duplicate rule id/name {key!r}, also in {seen[key]}"))
                seen[key] = path
            if rule.id not in disabled and rule.name not in disabled:
                rules.append(rule)
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in rules", problems=problems)
    return rules

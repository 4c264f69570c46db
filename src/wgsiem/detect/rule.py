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

Three kinds of rule file share this metadata (``DetectionRule.kind``):

* ``sigma`` — one Sigma rule, matched event by event (:mod:`.match`);
* ``correlation`` — base Sigma rules and a Sigma correlation rule in one multi-document file, the
  ``wgsiem:`` block on the correlation (:mod:`.correlation`); base rules raise no alert of their own;
* ``detector`` — no ``detection:``; ``wgsiem.detector: <module>:<Class>`` names a Python plugin
  (:mod:`.detector`), ``wgsiem.options`` its default options. Its samples are *sequences*: fed in
  order to a fresh engine, ``match`` raises at least one alert of the rule and ``no_match`` none (the
  same holds for correlation rules).

Loading is strict: every problem of every file is collected into one :class:`ConfigError` with file
locations, so a broken rule never half-loads and the author sees all mistakes at once.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule, SigmaRuleBase

from wgsiem.errors import ConfigError, Location, WgsiemError

from .attack import TACTICS, TECHNIQUES
from .correlation import Correlation, compile_correlation
from .match import Predicate, RuleCompileError, predicate_for, required_values

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

_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""PyYAML's safe loader, in C (libyaml) when available: the same constructors and resolvers as
``yaml.safe_load``, five to ten times faster on the rule files."""

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
    sigma: SigmaRuleBase | None
    """The parsed Sigma rule (``SigmaRule`` or ``SigmaCorrelationRule``); ``None`` for a detector."""
    predicate: Predicate
    kind: str = "sigma"
    correlation: Correlation | None = None
    detector: str = ""
    """``module:Class`` of a detector rule."""
    options: dict[str, Any] | None = None
    """A detector's default options (``wgsiem.options``)."""
    base_rules: tuple[SigmaRule, ...] = ()
    """The hidden base rules of a correlation rule."""
    actions: frozenset[str] | None = None
    """The ``event.action`` values (casefolded) a Sigma or correlation rule can match; ``None``: any."""
    sample_options: dict[str, Any] | None = None
    """Detector options the samples run with (``wgsiem.samples.options``), to keep sequences short."""
    conditions: tuple[Any, ...] = ()
    """A Sigma rule's parsed condition trees (pySigma's), for :meth:`predicate_for`."""
    conditions_predicate: Predicate | None = None
    """The predicate compiled from :attr:`conditions` — :meth:`predicate_for` compiles them per action
    only while :attr:`predicate` is still that one (a rule copied with another predicate keeps it)."""

    def matches(self, doc: dict[str, Any]) -> bool:
        return self.predicate(doc)

    def predicate_for(self, action: str) -> Predicate:
        """:attr:`predicate` for documents whose ``event.action`` is ``action`` (nested, a string):
        see :func:`.match.compile_for_action`."""
        if self.conditions and self.predicate is self.conditions_predicate:
            return predicate_for(self.conditions, action)
        return self.predicate


def _problem(path: Path, what: str, fix: str | None = None) -> WgsiemError:
    return WgsiemError(what, location=Location(str(path)), fix=fix)


_LOADED: dict[str, tuple[str, DetectionRule]] = {}
"""Rules loaded in this process, by path, with the text they were compiled from: an engine built
again (a configuration reload, each test, ``wgsiem rules test``) reuses a compiled rule whose file
did not change instead of parsing its YAML and Sigma again (reading and comparing the text costs
microseconds; the parse, milliseconds). The text, not the mtime, decides: a file rewritten within one
timestamp tick at the same size is still seen."""


def load_rule(path: Path) -> DetectionRule:
    """Load and compile one rule file; raises :class:`ConfigError` listing every problem in it.

    A file loaded before with the same text is not parsed again: the compiled rule is reused, with
    its own copies of the sample documents and options (callers may edit those; the compiled
    predicates and the pySigma objects are shared and never edited).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read rule: {e}", location=Location(str(path))) from e
    cached = _LOADED.get(str(path))
    if cached is None or cached[0] != text:
        if len(_LOADED) >= 1024:  # rule directories hold dozens of files
            _LOADED.clear()
        _LOADED[str(path)] = cached = (text, _load_rule(path, text))
    rule = cached[1]
    return dataclasses.replace(
        rule,
        samples_match=copy.deepcopy(rule.samples_match),
        samples_no_match=copy.deepcopy(rule.samples_no_match),
        options=copy.deepcopy(rule.options),
        sample_options=copy.deepcopy(rule.sample_options),
    )


def _load_rule(path: Path, text: str) -> DetectionRule:
    problems: list[WgsiemError] = []
    try:
        docs = list(yaml.load_all(text, Loader=_SafeLoader))
    except yaml.YAMLError as e:
        raise ConfigError(f"cannot read rule: {e}", location=Location(str(path))) from e
    if not docs or not all(isinstance(d, dict) for d in docs):
        raise ConfigError("a rule file must hold YAML mappings", location=Location(str(path)))
    raw = docs[-1]
    kind = "sigma"
    base_rules: list[SigmaRule] = []
    correlation_rule: SigmaCorrelationRule | None = None
    ext_raw = raw.get("wgsiem")
    try:
        if len(docs) > 1 or "correlation" in raw:
            kind = "correlation"
            # SigmaCollection.from_yaml, with the same safe loader in C (its pure-Python parse was
            # most of the loading time)
            collection = SigmaCollection.from_dicts(
                list(yaml.load_all(text, Loader=_SafeLoader)), collect_errors=True
            )
            problems.extend(_problem(path, f"Sigma: {e}") for e in collection.errors)
            for r in collection.rules:
                problems.extend(_problem(path, f"Sigma: {e}") for e in r.errors)
            parsed: list[Any] = list(collection.rules) or [None]
            *bases, last = parsed
            if not isinstance(last, SigmaCorrelationRule) or not all(isinstance(b, SigmaRule) for b in bases):
                raise ConfigError(
                    "a correlation file holds base Sigma rules and then one correlation rule",
                    location=Location(str(path)),
                )
            correlation_rule = last
            base_rules = [b for b in bases if isinstance(b, SigmaRule)]
            sigma: SigmaRuleBase = last
        elif "detection" not in raw and isinstance(ext_raw, dict) and "detector" in ext_raw:
            kind = "detector"
            # The metadata is checked by pySigma exactly as a rule's: parse it with a never-matching
            # detection, then keep only the metadata.
            shim = {k: v for k, v in raw.items() if k != "wgsiem"}
            shim.setdefault("logsource", {"product": "wireguard"})
            shim["detection"] = {"never": {"event.action": "\x00detector"}, "condition": "never"}
            sigma = SigmaRule.from_dict(shim, collect_errors=True)
            problems.extend(_problem(path, f"Sigma: {e}") for e in sigma.errors)
        else:
            sigma = SigmaRule.from_yaml(text, collect_errors=True)
            problems.extend(_problem(path, f"Sigma: {e}") for e in sigma.errors)
    except ConfigError:
        raise
    except (SigmaError, yaml.YAMLError) as e:  # pySigma re-reads the YAML strictly (duplicate keys)
        raise ConfigError(f"invalid Sigma rule: {e}", location=Location(str(path))) from e
    except (AttributeError, TypeError, ValueError, KeyError) as e:
        # pySigma assumes well-typed values in places (e.g. a list as correlation `type`); a malformed
        # file must still be a located error, not a crash of the loader
        raise ConfigError(f"invalid Sigma rule: {type(e).__name__}: {e}", location=Location(str(path))) from e

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
    # an invalid value stays a plain string (pySigma collected the error): treat it as missing
    level = str(getattr(sigma.level, "name", "")).lower()
    need(level, "`level`")
    status = str(getattr(sigma.status, "name", "")).lower()
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
    for key, sample_docs in (("match", match), ("no_match", no_match)):
        if (
            not isinstance(sample_docs, list)
            or not sample_docs
            or not all(isinstance(d, dict) for d in sample_docs)
        ):
            problems.append(_problem(path, f"wgsiem.samples.{key} must be a non-empty list of ECS documents"))

    predicate: Predicate = lambda doc: False  # noqa: E731 — replaced below when the rule compiles
    conditions: tuple[Any, ...] = ()
    actions: frozenset[str] | None = None
    correlation: Correlation | None = None
    detector = ""
    options: dict[str, Any] | None = None
    if kind == "sigma" and isinstance(sigma, SigmaRule) and not sigma.errors:
        try:
            conditions = tuple(c.parsed for c in sigma.detection.parsed_condition)
            predicate = predicate_for(conditions)
            actions = _actions([sigma])
        except (RuleCompileError, SigmaError) as e:
            problems.append(_problem(path, f"cannot evaluate detection: {e}"))
    elif kind == "correlation" and correlation_rule is not None and not problems:
        try:
            base: dict[str, Predicate] = {}
            trees: dict[str, tuple[Any, ...]] = {}
            for b in base_rules:
                tree = tuple(c.parsed for c in b.detection.parsed_condition)
                pred = predicate_for(tree)
                for ref in (b.name, str(b.id) if b.id else None):
                    if ref:
                        base[ref], trees[ref] = pred, tree
            correlation = compile_correlation(correlation_rule, base, trees)
            actions = _actions(base_rules)
        except (RuleCompileError, SigmaError) as e:
            problems.append(_problem(path, f"cannot evaluate correlation: {e}"))
    elif kind == "detector":
        detector = str(ext.get("detector") or "")
        if not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", detector):
            problems.append(_problem(path, "wgsiem.detector must be `package.module:Class`"))
        opts = ext.get("options", {})
        if not isinstance(opts, dict):
            problems.append(_problem(path, "wgsiem.options must be a mapping"))
            opts = {}
        options = dict(opts)

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
        sigma=None if kind == "detector" else sigma,
        predicate=predicate,
        kind=kind,
        correlation=correlation,
        detector=detector,
        options=options,
        base_rules=tuple(base_rules),
        actions=actions,
        sample_options=dict(samples["options"])
        if isinstance(samples, dict) and isinstance(samples.get("options"), dict)
        else None,
        conditions=conditions,
        conditions_predicate=predicate if conditions else None,
    )


def _actions(rules: list[SigmaRule]) -> frozenset[str] | None:
    """Union of the ``event.action`` values the rules' conditions require; ``None`` if one does not."""
    out: set[str] = set()
    for r in rules:
        for c in r.detection.parsed_condition:
            need = required_values(c.parsed, "event.action")
            if need is None:
                return None
            out |= need
    return frozenset(out)


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

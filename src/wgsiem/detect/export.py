"""Portable detections: the Sigma rules as files, and their conversion to SIEM searches.

``wgsiem export sigma --out DIR`` writes:

* ``sigma/<name>.yml`` — each Sigma rule (and correlation rule) as a portable Sigma file. The
  ``wgsiem:`` block stays as a top-level custom field: the Sigma specification allows arbitrary custom
  fields and pySigma keeps every unknown top-level key in ``SigmaRule.custom_attributes``, so other
  Sigma tools read the file unchanged. Its ``samples`` (wgsiem's test events, often longer than the
  rule) and a detector's ``options`` are left out of the export.
* ``pipelines/wgsiem_ecs.yml`` — the pySigma processing pipeline of wgsiem's documents (ECS field
  names are kept; every query is restricted to wgsiem's WireGuard data: ``event.module: wireguard`` and,
  for Elastic, the ``logs-wireguard.*-*`` data streams).
* ``splunk/savedsearches.conf``, ``splunk/<name>.spl``; ``elastic/lucene/``, ``elastic/esql/``,
  ``elastic/eql/`` — ``<name>.txt`` queries and ``rules.ndjson`` (Kibana detection rules to import) per
  language, all converted by the pySigma backends (``pysigma-backend-splunk``,
  ``pysigma-backend-elasticsearch``).
* ``README.md`` — what was converted to what, and the stateful detectors that run only in wgsiem.

:func:`convert_rules` is the API other exporters (the Splunk app, the Elastic content pack) build on.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from wgsiem.errors import WgsiemError

__all__ = [
    "LANGUAGES",
    "TARGETS",
    "ConvertedRule",
    "convert_rules",
    "export_sigma",
    "kibana_rule",
    "portable_documents",
    "processing_pipeline",
    "write_export",
]

TARGETS = ("splunk", "lucene", "esql", "eql")
LANGUAGES = {"splunk": "spl", "lucene": "lucene", "esql": "esql", "eql": "eql"}
ELASTIC_INDEX = "logs-wireguard.*-*"
SPLUNK_SOURCETYPE = "wireguard:*"


@dataclass(frozen=True, slots=True)
class ConvertedRule:
    """One rule converted for one SIEM: the query plus the metadata a saved search / detection rule
    needs. ``language`` is ``spl``, ``lucene``, ``esql`` or ``eql``."""

    rule_id: str
    name: str
    title: str
    description: str
    level: str
    risk_score: float
    tactics: tuple[str, ...]
    techniques: tuple[str, ...]
    query: str
    language: str
    notes: tuple[str, ...] = field(default_factory=tuple)


def processing_pipeline(target: str) -> Any:
    """The pySigma pipeline for wgsiem's ECS documents in ``target``.

    Field names are ECS already (wgsiem writes ECS), so no field is renamed; each query gets the
    condition ``event.module: wireguard`` (wgsiem's documents, nothing else in the index), and Elastic
    queries the ``logs-wireguard.*-*`` data streams the Elasticsearch sink writes. Splunk searches
    assume the HEC sink's ``schema: ecs`` (ECS names in the JSON body, sourcetype ``wireguard:*``).
    """
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import AddConditionTransformation, SetStateTransformation

    items = [
        ProcessingItem(
            identifier="wgsiem_module",
            transformation=AddConditionTransformation({"event.module": "wireguard"}),
            rule_conditions=[LogsourceCondition(product="wireguard")],
        ),
    ]
    if target in ("lucene", "esql", "eql"):
        items.append(
            ProcessingItem(
                identifier="wgsiem_index", transformation=SetStateTransformation("index", ELASTIC_INDEX)
            )
        )
    if target == "splunk":
        items.append(
            ProcessingItem(
                identifier="wgsiem_sourcetype",
                transformation=AddConditionTransformation({"sourcetype": SPLUNK_SOURCETYPE}),
                rule_conditions=[LogsourceCondition(product="wireguard")],
            )
        )
    return ProcessingPipeline(name=f"wgsiem ECS ({target})", priority=20, items=items)


_BACKEND_PACKAGES = {
    "splunk": "pysigma-backend-splunk",
    "lucene": "pysigma-backend-elasticsearch",
    "esql": "pysigma-backend-elasticsearch",
    "eql": "pysigma-backend-elasticsearch",
}


def _backend(target: str, output_format: str = "default") -> Any:
    try:
        return _load_backend(target, output_format)
    except ImportError as exc:
        package = _BACKEND_PACKAGES.get(target, "a pySigma backend")
        raise WgsiemError(
            f"converting to {target} needs {package}, which is not installed ({exc})",
            fix=f"pip install --no-deps '{package}' (its pySigma pin predates pySigma 2; "
            "scripts/setup.sh does this)",
        ) from None


def _load_backend(target: str, output_format: str) -> Any:
    if target == "splunk":
        from sigma.backends.splunk import SplunkBackend

        return SplunkBackend(processing_pipeline("splunk"), output_format=output_format)
    if target == "lucene":
        from sigma.backends.elasticsearch import LuceneBackend

        return LuceneBackend(processing_pipeline("lucene"), output_format=output_format)
    if target == "esql":
        from sigma.backends.elasticsearch import ESQLBackend

        return ESQLBackend(processing_pipeline("esql"), output_format=output_format)
    if target == "eql":
        from sigma.backends.elasticsearch import EqlBackend

        return EqlBackend(processing_pipeline("eql"), output_format=output_format)
    raise WgsiemError(f"unknown conversion target {target!r}", fix="one of: " + ", ".join(TARGETS))


def portable_documents(path: Path) -> list[dict[str, Any]]:
    """A rule file's YAML documents as exported: ``wgsiem.samples`` (and detector options) left out."""
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(d, dict)]
    out = []
    for d in docs:
        d = copy.deepcopy(d)
        ext = d.get("wgsiem")
        if isinstance(ext, dict):
            ext.pop("samples", None)
            ext.pop("options", None)
        out.append(d)
    return out


def _portable_text(path: Path) -> str:
    return "---\n".join(
        yaml.safe_dump(d, sort_keys=False, allow_unicode=True, width=100) for d in portable_documents(path)
    )


def _rules(directories: list[Path] | None) -> list[Any]:
    from .rule import BUILTIN_RULES, load_rules

    return load_rules(directories or [BUILTIN_RULES])


def convert_rules(
    target: str,
    *,
    directories: list[Path] | None = None,
    skipped: list[tuple[str, str]] | None = None,
) -> list[ConvertedRule]:
    """Every Sigma and correlation rule converted for ``target`` (``splunk``, ``lucene``, ``esql``,
    ``eql``). Detector rules (Python plugins) have no query and are left out, and so is a correlation
    rule the backend has no correlation support for (Lucene); both are appended to ``skipped`` as
    ``(name, why)`` when given. Any other conversion failure raises :class:`WgsiemError` naming the
    rule — a Sigma rule that cannot be converted is a bug in the rule."""
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaError

    if target not in TARGETS:
        raise WgsiemError(f"unknown conversion target {target!r}", fix="one of: " + ", ".join(TARGETS))
    out: list[ConvertedRule] = []
    for rule in _rules(directories):
        kind = getattr(rule, "kind", "sigma")
        if kind == "detector":
            if skipped is not None:
                skipped.append((rule.name, "stateful detector: runs only in wgsiem's engine"))
            continue
        backend = _backend(target)
        try:
            collection = SigmaCollection.from_yaml(_portable_text(rule.path))
            queries = backend.convert(collection)
        except (SigmaError, NotImplementedError) as e:
            if kind == "correlation" and "correlation" in str(e).lower():
                if skipped is not None:
                    skipped.append((rule.name, f"the {target} backend has no correlation support: {e}"))
                continue
            raise WgsiemError(
                f"{rule.name}: the {target} backend cannot convert it: {e}",
                fix="simplify the detection, or list the rule as wgsiem-only in the export README",
            ) from e
        if not queries:
            raise WgsiemError(f"{rule.name}: the {target} backend produced no query")
        query = str(queries[-1])  # a correlation file: the correlation's query comes last
        notes = [f"entity: {', '.join(rule.entity_fields)}", f"playbook: {rule.playbook}"]
        if kind == "correlation":
            notes.append("Sigma correlation rule: the query aggregates over the correlation's timespan")
        if target == "splunk":
            notes.append(
                "expects the splunk_hec sink with schema: ecs (ECS field names, sourcetype wireguard:*)"
            )
        else:
            notes.append(f"expects the elasticsearch sink's data streams ({ELASTIC_INDEX})")
        out.append(
            ConvertedRule(
                rule_id=rule.id,
                name=rule.name,
                title=rule.title,
                description=rule.description,
                level=rule.level,
                risk_score=rule.risk_score,
                tactics=tuple(rule.tactics),
                techniques=tuple(rule.techniques),
                query=query,
                language=LANGUAGES[target],
                notes=tuple(notes),
            )
        )
    return out


_SEVERITY = {"informational": "low", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}


def kibana_rule(c: ConvertedRule) -> dict[str, Any]:
    """A Kibana detection rule (``POST /api/detection_engine/rules/_import`` ndjson line)."""
    from .attack import TACTICS, TECHNIQUES

    rule: dict[str, Any] = {
        "rule_id": c.rule_id,
        "name": c.title,
        "description": c.description,
        "risk_score": int(c.risk_score),
        "severity": _SEVERITY.get(c.level, "medium"),
        "enabled": True,
        "interval": "5m",
        "from": "now-6m",
        "author": ["wgsiem"],
        "license": "Apache-2.0",
        "tags": ["wgsiem", "WireGuard", c.name],
        "note": "\n".join(c.notes),
        "query": c.query,
        "language": c.language,
        "threat": [
            {
                "framework": "MITRE ATT&CK",
                "tactic": {
                    "id": TACTICS[t][0],
                    "name": TACTICS[t][1],
                    "reference": f"https://attack.mitre.org/tactics/{TACTICS[t][0]}/",
                },
                "technique": [
                    {
                        "id": tid,
                        "name": TECHNIQUES.get(tid, tid),
                        "reference": f"https://attack.mitre.org/techniques/{tid.replace('.', '/')}/",
                    }
                    for tid in c.techniques
                ],
            }
            for t in c.tactics
            if t in TACTICS
        ],
    }
    if c.language == "esql":
        rule["type"] = "esql"
    elif c.language == "eql":
        rule["type"] = "eql"
        rule["index"] = [ELASTIC_INDEX]
    else:
        rule["type"] = "query"
        rule["index"] = [ELASTIC_INDEX]
    return rule


def _savedsearch(c: ConvertedRule) -> str:
    query = c.query.replace("\n", " \\\n")
    return (
        f"[wgsiem - {c.title}]\n"
        f"description = {c.description.replace(chr(10), ' ')}\n"
        f"search = {query}\n"
        "dispatch.earliest_time = -10m\n"
        "dispatch.latest_time = now\n"
        "cron_schedule = */5 * * * *\n"
        "enableSched = 1\n"
        "alert.track = 1\n"
        "alert.severity = "
        + {"informational": "1", "low": "2", "medium": "3", "high": "4", "critical": "5"}.get(c.level, "3")
        + "\n"
        f"action.correlationsearch.label = {c.title}\n"
        f"action.notable.param.rule_title = {c.title}\n"
        f"action.risk.param._risk_score = {int(c.risk_score)}\n"
        f"action.correlationsearch.annotations = {json.dumps({'mitre_attack': list(c.techniques)})}\n"
    )


def write_export(out: Path, *, directories: list[Path] | None = None) -> dict[str, Any]:
    """Write the whole export into ``out``; returns a summary (counts per target, wgsiem-only rules)."""
    out.mkdir(parents=True, exist_ok=True)
    rules = _rules(directories)
    portable = [r for r in rules if getattr(r, "kind", "sigma") != "detector"]
    detectors = [r for r in rules if getattr(r, "kind", "sigma") == "detector"]
    (out / "sigma").mkdir(exist_ok=True)
    for r in portable:
        (out / "sigma" / f"{r.name}.yml").write_text(_portable_text(r.path), encoding="utf-8")
    (out / "pipelines").mkdir(exist_ok=True)
    (out / "pipelines" / "wgsiem_ecs.yml").write_text(_pipeline_yaml(), encoding="utf-8")
    summary: dict[str, Any] = {"sigma": len(portable), "wgsiem_only": [r.name for r in detectors]}
    summary["skipped"] = {}
    for target in TARGETS:
        skipped: list[tuple[str, str]] = []
        converted = convert_rules(target, directories=directories, skipped=skipped)
        summary[target] = len(converted)
        summary["skipped"][target] = [n for n, why in skipped if "detector" not in why]
        if target == "splunk":
            folder = out / "splunk"
            folder.mkdir(exist_ok=True)
            for c in converted:
                (folder / f"{c.name}.spl").write_text(c.query + "\n", encoding="utf-8")
            (folder / "savedsearches.conf").write_text(
                "\n".join(_savedsearch(c) for c in converted), encoding="utf-8"
            )
        else:
            folder = out / "elastic" / target
            folder.mkdir(parents=True, exist_ok=True)
            for c in converted:
                (folder / f"{c.name}.txt").write_text(c.query + "\n", encoding="utf-8")
            with open(folder / "rules.ndjson", "w", encoding="utf-8") as fh:
                for c in converted:
                    fh.write(json.dumps(kibana_rule(c), sort_keys=True) + "\n")
    (out / "README.md").write_text(_readme(portable, detectors, summary), encoding="utf-8")
    return summary


def _pipeline_yaml() -> str:
    return yaml.safe_dump(
        {
            "name": "wgsiem ECS",
            "priority": 20,
            "transformations": [
                {
                    "id": "wgsiem_module",
                    "type": "add_condition",
                    "conditions": {"event.module": "wireguard"},
                    "rule_conditions": [{"type": "logsource", "product": "wireguard"}],
                },
                {"id": "wgsiem_index", "type": "set_state", "key": "index", "val": ELASTIC_INDEX},
            ],
        },
        sort_keys=False,
    )


def _readme(portable: list[Any], detectors: list[Any], summary: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| `{r.name}` | {getattr(r, 'kind', 'sigma')} | {r.level} | {', '.join(r.techniques)} |"
        for r in portable
    )
    only = "\n".join(f"| `{r.name}` | {r.title} | `{r.detector}` |" for r in detectors) or "| — | | |"
    folders = "\n".join(
        [
            "| folder | what |",
            "|---|---|",
            f"| `sigma/` | {summary['sigma']} Sigma rule file(s) — wgsiem's metadata under the custom "
            "top-level field `wgsiem:` (risk score, entity, triage, playbook); its test samples left out |",
            "| `pipelines/wgsiem_ecs.yml` | the pySigma processing pipeline (ECS names kept; "
            f"`event.module: wireguard`; Elastic index `{ELASTIC_INDEX}`) |",
            f"| `splunk/` | {summary['splunk']} SPL search(es) and `savedsearches.conf` (every 5 minutes; "
            "needs the splunk_hec sink with `schema: ecs`) |",
            "| `elastic/lucene/`, `elastic/esql/`, `elastic/eql/` | "
            f"{summary['lucene']} / {summary['esql']} / {summary['eql']} queries and `rules.ndjson` "
            "to import as Kibana detection rules |",
        ]
    )
    return f"""# wgsiem detections — portable export

Written by `wgsiem export sigma`. The rules are Sigma files; the same files run in wgsiem's engine at
the gateway and, converted by pySigma's backends, in Splunk and Elastic.

{folders}

Convert again yourself: `sigma convert -t splunk -p pipelines/wgsiem_ecs.yml sigma/` (sigma-cli).

## Converted rules

| rule | kind | level | ATT&CK |
|---|---|---|---|
{rows}

Correlation rules a backend cannot express (Lucene has no aggregation): {_skipped(summary)}

## Runs only in wgsiem's engine

These detections are stateful Python detectors (baselines per peer and hour of week, travel speed,
first-seen tables, correlation with EDR alerts, change tickets). No Sigma construct expresses them, so
they are not exported; they run in `wgsiem run` at the gateway and their alerts reach every SIEM as
ECS alert documents (`event.dataset: wireguard.detect`).

| rule | title | detector |
|---|---|---|
{only}
"""


def _skipped(summary: dict[str, Any]) -> str:
    parts = [
        f"{t}: " + ", ".join(f"`{n}`" for n in names) for t, names in summary["skipped"].items() if names
    ]
    return "; ".join(parts) or "none"


@click.command("sigma")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="directory to write")
@click.option(
    "--dir",
    "dirs",
    multiple=True,
    type=click.Path(file_okay=False, exists=True),
    help="rule directories instead of the built-in rules (repeatable)",
)
def export_sigma(out: str, dirs: tuple[str, ...]) -> None:
    """Write the Sigma rules as portable files, with Splunk (SPL) and Elastic (Lucene, ES|QL, EQL)
    conversions ready to install."""
    summary = write_export(Path(out), directories=[Path(d) for d in dirs] or None)
    click.echo(
        f"{out}: {summary['sigma']} Sigma rule(s); converted: splunk {summary['splunk']}, lucene "
        f"{summary['lucene']}, esql {summary['esql']}, eql {summary['eql']}; "
        f"{len(summary['wgsiem_only'])} stateful detector(s) run only in wgsiem's engine"
    )

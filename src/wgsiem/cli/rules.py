"""``wgsiem rules list|lint|test|evaluate``: the detection content, checked and measured."""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
import yaml

__all__ = ["lint_rules", "rule_rows", "rules", "run_samples"]

rule_dir_option = click.option(
    "--dir",
    "dirs",
    multiple=True,
    type=click.Path(file_okay=False, exists=True),
    help="also these rule directories (repeatable)",
)
no_builtin_option = click.option("--no-builtin", is_flag=True, help="leave out the built-in rules")


def _dirs(dirs: tuple[str, ...], no_builtin: bool) -> list[Path]:
    from wgsiem.detect.rule import BUILTIN_RULES

    return ([] if no_builtin else [BUILTIN_RULES]) + [Path(d) for d in dirs]


def rule_rows(directories: list[Path]) -> list[dict[str, Any]]:
    """One row per loaded rule: id, name, level, tactic, technique, playbook, kind, maturity, file."""
    from wgsiem.detect.rule import load_rules

    return [
        {
            "id": r.id,
            "name": r.name,
            "title": r.title,
            "level": r.level,
            "risk_score": r.risk_score,
            "tactics": list(r.tactics),
            "techniques": list(r.techniques),
            "playbook": r.playbook,
            "kind": getattr(r, "kind", "sigma"),
            "maturity": r.maturity,
            "file": str(r.path),
        }
        for r in load_rules(directories)
    ]


def lint_rules(directories: list[Path]) -> list[str]:
    """Every problem of every rule file (the loader's checks: Sigma parse, the ``wgsiem:`` block's
    schema, samples present, ATT&CK ids known, ids and names unique), plus the file name = name."""
    from wgsiem.detect.rule import load_rule, rule_files
    from wgsiem.errors import ConfigError

    problems: list[str] = []
    seen: dict[str, Path] = {}
    for directory in directories:
        if not directory.is_dir():
            problems.append(f"{directory}: rule directory does not exist")
            continue
        for path in rule_files(directory):
            try:
                rule = load_rule(path)
            except ConfigError as e:
                problems.extend(p.render() for p in (e.problems or [e]))
                continue
            if path.stem != rule.name:
                problems.append(f"{path}: file name should be {rule.name}.yaml")
            for key in (rule.id, rule.name):
                if key in seen and seen[key] != path:
                    problems.append(f"{path}: duplicate rule id/name {key!r}, also in {seen[key]}")
                seen[key] = path
    return problems


def run_samples(directories: list[Path]) -> list[tuple[str, str, bool, str]]:
    """Each rule's samples through the real engine: (rule, case, ok, why).

    A ``sigma`` rule runs alone: each ``match`` sample in a fresh engine raises exactly one alert, the
    ``no_match`` samples none. ``correlation`` and ``detector`` samples are *sequences*, fed in order
    to a fresh engine running every rule (the escalation detector needs the others' alerts) with the
    rule's ``samples.options``: ``match`` raises at least one alert of the rule, ``no_match`` none.
    """
    from wgsiem.detect.config import DetectConfig
    from wgsiem.detect.engine import DetectionEngine
    from wgsiem.detect.rule import load_rules
    from wgsiem.enrich.base import TransformContext
    from wgsiem.event import Envelope, EventMeta
    from wgsiem.pipeline.telemetry import TelemetryRegistry
    from wgsiem.sources.peer_directory import PeerDirectory

    out: list[tuple[str, str, bool, str]] = []
    loaded = load_rules(directories)
    with tempfile.TemporaryDirectory(prefix="wgsiem-rules-test-") as tmp:

        def engine(rules: list[Any], options: dict[str, Any] | None) -> DetectionEngine:
            # a state directory per engine: the engine persists its dedup and detector state there
            state = Path(tempfile.mkdtemp(dir=tmp))
            tel = TelemetryRegistry().register("detect", "transform", "detect")
            ctx = TransformContext("wgsiem-rules-test", state, tel, PeerDirectory())
            cfg: dict[str, Any] = {}
            if options and "detector_options" in DetectConfig.model_fields:
                cfg["detector_options"] = options
            return DetectionEngine("detect", DetectConfig(**cfg), ctx, rules=rules)

        def feed(eng: DetectionEngine, name: str, docs: Any) -> int:
            alerts: list[Any] = []
            for doc in docs:
                eng(Envelope(copy.deepcopy(doc), EventMeta("rules-test", 0)))
                alerts.extend(eng.drain_alerts())
            close = getattr(eng, "close", None)
            if close is not None:
                close()
            return sum(1 for a in alerts if a.data.get("event", {}).get("action") == name)

        for rule in loaded:
            if getattr(rule, "kind", "sigma") == "sigma":
                for n, doc in enumerate(rule.samples_match):
                    got = feed(engine([rule], None), rule.name, [doc])
                    out.append((rule.name, f"match[{n}]", got == 1, f"{got} alert(s), want 1"))
                got = feed(engine([rule], None), rule.name, rule.samples_no_match)
            else:
                sample_options = getattr(rule, "sample_options", None)
                options = {rule.name: sample_options} if sample_options else None
                got = feed(engine(loaded, options), rule.name, rule.samples_match)
                out.append((rule.name, "match sequence", got >= 1, f"{got} alert(s), want ≥ 1"))
                got = feed(engine(loaded, options), rule.name, rule.samples_no_match)
            out.append((rule.name, "no_match", got == 0, f"{got} alert(s), want 0"))
    return out


@click.group()
def rules() -> None:
    """List, lint, test and evaluate the detection rules."""


@rules.command("list")
@rule_dir_option
@no_builtin_option
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def list_cmd(dirs: tuple[str, ...], no_builtin: bool, as_json: bool) -> None:
    """Every rule: id, name, level, tactic, playbook and kind (sigma, correlation, detector)."""
    rows = rule_rows(_dirs(dirs, no_builtin))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'name':<40} {'kind':<11} {'level':<13} {'tactic':<22} {'playbook':<20} id")
    for r in rows:
        click.echo(
            f"{r['name']:<40} {r['kind']:<11} {r['level']:<13} {','.join(r['tactics']):<22} "
            f"{r['playbook']:<20} {r['id']}"
        )


@rules.command()
@rule_dir_option
@no_builtin_option
def lint(dirs: tuple[str, ...], no_builtin: bool) -> None:
    """Check every rule file and list every problem at once (exit 1 when there is one)."""
    directories = _dirs(dirs, no_builtin)
    problems = lint_rules(directories)
    for p in problems:
        click.echo(f"error: {p}", err=True)
    if problems:
        sys.exit(1)
    click.echo(f"{sum(1 for _ in rule_rows(directories))} rule(s): OK")


@rules.command("test")
@rule_dir_option
@no_builtin_option
def test_cmd(dirs: tuple[str, ...], no_builtin: bool) -> None:
    """Run each rule's match / no_match samples through the real engine (exit 1 on a failure)."""
    results = run_samples(_dirs(dirs, no_builtin))
    failed = [r for r in results if not r[2]]
    for name, case, ok, why in results:
        if not ok:
            click.echo(f"FAIL {name} {case}: {why}", err=True)
    click.echo(
        f"{len(results) - len(failed)} passed, {len(failed)} failed ({len({r[0] for r in results})} rules)"
    )
    if failed:
        sys.exit(1)


@rules.command()
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False, exists=True),
    help="use this config's source settings and transforms (a detect stage is added if missing)",
)
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of tables")
@click.option("--strict", is_flag=True, help="exit 1 when a target of issue 5 is missed")
@click.option(
    "--grace-secs",
    type=click.FloatRange(min=0),
    default=900.0,
    show_default=True,
    help="an alert up to this long after a label's end still counts for it",
)
@click.option(
    "--option",
    "-O",
    "options",
    multiple=True,
    metavar="RULE.KEY=VALUE",
    help="override a detector option (YAML value), e.g. wireguard_unusual_hours.min_sessions=3",
)
@click.option("--quiet", "-q", is_flag=True, help="no progress on stderr")
def evaluate(
    directory: str,
    config_path: str | None,
    as_json: bool,
    strict: bool,
    grace_secs: float,
    options: tuple[str, ...],
    quiet: bool,
) -> None:
    """Replay a `wgsiem simulate` DIRECTORY through enrichment and detection; per rule and per attack
    class: precision, recall, false alerts per 1,000 peer-days and detection delay."""
    from wgsiem.detect.evaluate import evaluate as run
    from wgsiem.detect.evaluate import render_table

    def progress(msg: str) -> None:
        click.echo(f"\r{msg}", err=True, nl=msg.startswith("replayed"))

    detector_options: dict[str, dict[str, Any]] = {}
    for text in options:
        target, eq, value = text.partition("=")
        rule_name, dot, key = target.partition(".")
        if not eq or not dot or not rule_name or not key:
            raise click.BadParameter(f"{text!r}: use RULE.KEY=VALUE", param_hint="--option")
        detector_options.setdefault(rule_name, {})[key] = yaml.safe_load(value)
    ev = run(
        Path(directory),
        config_path=Path(config_path) if config_path else None,
        grace_secs=grace_secs,
        detector_options=detector_options,
        progress=None if quiet else progress,
    )
    click.echo(json.dumps(ev.to_json(), indent=2) if as_json else render_table(ev))
    if strict and not ev.targets_met():
        sys.exit(1)

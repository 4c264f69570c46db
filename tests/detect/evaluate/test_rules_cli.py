"""``wgsiem rules list|lint|test`` on the built-in rules and on broken rule directories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from click.testing import CliRunner

from wgsiem.cli.rules import lint_rules, rules, run_samples
from wgsiem.detect.rule import BUILTIN_RULES, load_rules

# a stateless Sigma rule with four verbatim match samples (the built-in wireguard_invalid_handshake
# became a correlation on 2026-11-26; its single-event version is kept as this fixture)
HANDSHAKE = Path(__file__).parents[2] / "fixtures/detect/rules/wireguard_invalid_handshake.yaml"


def test_list_json_has_every_rule_and_its_kind() -> None:
    res = CliRunner().invoke(rules, ["list", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert {r["name"] for r in rows} == {r.name for r in load_rules([BUILTIN_RULES])}
    by_name = {r["name"]: r for r in rows}
    assert by_name["wireguard_invalid_handshake"]["kind"] == "correlation"
    assert by_name["wireguard_invalid_handshake"]["playbook"] == "handshake-abuse"
    assert by_name["wireguard_invalid_handshake"]["tactics"] == ["credential-access", "impact"]
    assert {r["kind"] for r in rows} <= {"sigma", "correlation", "detector"}


def test_lint_lists_every_problem_of_every_file(tmp_path: Path) -> None:
    raw = yaml.safe_load(HANDSHAKE.read_text())
    a = dict(raw, tags=["attack.t9999", "attack.credential-access"])  # unknown technique
    a["wgsiem"] = {k: v for k, v in raw["wgsiem"].items() if k != "samples"}  # no samples
    (tmp_path / "wireguard_invalid_handshake.yaml").write_text(yaml.safe_dump(a))
    b = dict(raw, name="copy_of_handshake")  # same id as the first, file name ≠ name
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(b))
    problems = lint_rules([tmp_path])
    text = "\n".join(problems)
    assert "T9999" in text
    assert "samples.match" in text and "samples.no_match" in text
    assert "file name should be copy_of_handshake.yaml" in text
    res = CliRunner().invoke(rules, ["lint", "--no-builtin", "--dir", str(tmp_path)])
    assert res.exit_code == 1


def test_lint_builtin_is_clean() -> None:
    assert lint_rules([BUILTIN_RULES]) == []


def test_samples_through_the_real_engine(tmp_path: Path) -> None:
    shutil.copy(HANDSHAKE, tmp_path / HANDSHAKE.name)
    results = run_samples([tmp_path])
    assert results and all(ok for _, _, ok, _ in results)
    assert {case for _, case, _, _ in results} == {"match[0]", "match[1]", "match[2]", "match[3]", "no_match"}
    res = CliRunner().invoke(rules, ["test", "--no-builtin", "--dir", str(tmp_path)])
    assert res.exit_code == 0 and "5 passed, 0 failed" in res.output


def test_a_sample_that_does_not_match_fails(tmp_path: Path) -> None:
    raw = yaml.safe_load(HANDSHAKE.read_text())
    raw["wgsiem"]["samples"]["match"] = raw["wgsiem"]["samples"]["no_match"][:1]
    (tmp_path / HANDSHAKE.name).write_text(yaml.safe_dump(raw))
    res = CliRunner().invoke(rules, ["test", "--no-builtin", "--dir", str(tmp_path)])
    assert res.exit_code == 1
    assert "FAIL wireguard_invalid_handshake match[0]: 0 alert(s), want 1" in res.output

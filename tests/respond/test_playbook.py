"""Playbook files: the built-ins load and cover every detection rule's playbook; bad files are
reported with file:line:col and a fix; trigger matching."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from wgsiem.errors import ConfigError
from wgsiem.respond.playbook import builtin_playbook_dir, load_playbook_text, load_playbooks

from . import fakes

RULES = Path(__file__).resolve().parents[2] / "src" / "wgsiem" / "detect" / "rules"


def test_builtins_load_and_cover_every_rule_playbook() -> None:
    pbs = load_playbooks([], builtin=True)
    wanted = {
        (doc.get("wgsiem") or {}).get("playbook")
        for p in RULES.glob("*.yaml")
        for doc in yaml.safe_load_all(p.read_text())
        if isinstance(doc, dict)
    } - {None}
    missing = sorted(wanted - set(pbs))
    assert missing == [], f"rules name playbooks that do not exist: {missing}"
    assert pbs["handshake-abuse"].tier == 1
    assert all(pb.source.startswith(str(builtin_playbook_dir())) for pb in pbs.values())


def test_errors_name_file_line_and_fix() -> None:
    text = "id: x\nname: X\ntier: 7\nsteps:\n  - action: nuke_everything\n    colour: red\n"
    with pytest.raises(ConfigError) as err:
        load_playbook_text(text, "pb.yaml")
    rendered = [p.render() for p in err.value.problems]
    assert any(
        r.startswith("`tier`: Input should be less than or equal to 3 in pb.yaml:3:7") for r in rendered
    )
    assert any("unknown action 'nuke_everything'" in r and "pb.yaml:5:13" in r for r in rendered)
    assert any(r.startswith("unknown key `steps.0.colour` in pb.yaml:6:") for r in rendered)


def test_missing_key_and_bad_yaml() -> None:
    with pytest.raises(ConfigError) as err:
        load_playbook_text("id: x\nname: X\ntier: 1\n", "pb.yaml")
    assert err.value.problems[0].render() == "missing required key `steps` in pb.yaml:1:1 — add `steps:`"
    with pytest.raises(ConfigError) as err2:
        load_playbook_text("id: [x\n", "pb.yaml")
    assert "pb.yaml:2:1" in err2.value.render()


def test_collection_reports_every_bad_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("id: a\nname: A\ntier: 1\nsteps: []\n")
    (tmp_path / "b.yaml").write_text("id: b\nname: B\ntier: 0\nsteps:\n  - action: notify\n")
    with pytest.raises(ConfigError) as err:
        load_playbooks([tmp_path], builtin=False)
    assert len(err.value.problems) == 2


def test_trigger_matching() -> None:
    pbs = load_playbooks([], builtin=True)
    a = fakes.alert(playbook="handshake-abuse", severity=73)
    assert pbs["handshake-abuse"].matches(a)
    assert not pbs["handshake-abuse"].matches(fakes.alert(playbook="handshake-abuse", severity=21))
    assert not pbs["peer-spoofing"].matches(a)
    wrong_entity = fakes.alert(
        playbook="handshake-abuse", severity=73, entity=("wireguard.interface.name", "wg0")
    )
    assert not pbs["handshake-abuse"].matches(wrong_entity)
    pb = load_playbook_text(
        "id: hi\nname: H\ntier: 1\ntrigger: {rules: [wireguard_invalid_handshake], min_severity: 50}\n"
        "steps: [{action: notify}]\n",
        "x.yaml",
    )
    assert not pb.matches(fakes.alert(playbook="other", severity=21))
    assert pb.matches(fakes.alert(playbook="other", severity=73))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_raises_only_config_error(text: str) -> None:
    try:
        load_playbook_text(text, "fuzz.yaml")
    except ConfigError as exc:
        for p in exc.problems or [exc]:
            assert p.location is not None and p.location.file == "fuzz.yaml"


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["id", "name", "tier", "steps", "trigger", "approval", "on_crash", "extra"]),
        st.one_of(
            st.integers(-5, 5),
            st.text(max_size=10),
            st.lists(st.dictionaries(st.text(max_size=8), st.text(max_size=8)), max_size=2),
        ),
    )
)
def test_arbitrary_mappings_raise_only_config_error(data: dict) -> None:  # type: ignore[type-arg]
    with contextlib.suppress(ConfigError):
        load_playbook_text(yaml.safe_dump(data), "fuzz.yaml")

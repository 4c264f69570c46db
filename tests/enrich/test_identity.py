"""enrich_identity: inventory parsing, config comments, attribution by key and tunnel address, reloads."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.ecs import validate
from wgsiem.config.model import Config
from wgsiem.enrich.base import TransformContext
from wgsiem.enrich.enrich_identity.config import EnrichIdentityConfig
from wgsiem.enrich.enrich_identity.config_comments import identities_from_config
from wgsiem.enrich.enrich_identity.inventory import Identity, parse_inventory
from wgsiem.enrich.enrich_identity.transform import EnrichIdentity
from wgsiem.errors import ConfigError, Location, ParseError
from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "enrich" / "identity"
CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "config_watch"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "enrich" / "identity.md"

ALICE = "K9gGyX8OAK8aH8Myj6djqSaXI8jbj6xPk69x2xhtbpA="
BOB = "gbY32PzSxtpjWeaWMROhFw3nleS3JbhNHgtM/Z7FjOk="
GRACE = "YMnqXHJaIn/XOM39XxlGZIoV6FWIgzXGtXF6ATUb2TA="  # wg-easy fixture: "# Client: grace (1)"
HEIDI = "p3RXOeS41x/TnRBIV9hCN1lK5X/NdFUitlIFsubjglg="  # wg-easy fixture: "# Client: heidi's tablet (2)"
STRANGER = "TCbZB0wn2J7eWScMCsFLceBxsVI5UZ91R0svO6Y0gfU="


def context(tmp_path: Path, peers: PeerDirectory | None = None) -> TransformContext:
    tel = TelemetryRegistry().register("identity", "transform", "enrich_identity")
    return TransformContext("gw-test", tmp_path, tel, peers or PeerDirectory())


def build(tmp_path: Path, inventory: str | None = "inventory.yaml", **cfg: Any) -> EnrichIdentity:
    if inventory is not None:
        path = tmp_path / inventory
        if not path.exists():
            shutil.copy(FIXTURES / inventory, path)
        cfg.setdefault("inventory_path", str(path))
    peers = cfg.pop("peers", None)
    return EnrichIdentity("identity", EnrichIdentityConfig(**cfg), context(tmp_path, peers))


def session_event(key: str) -> dict[str, Any]:
    """The shape of a wg_state session-started (src/wgsiem/sources/wg_state/normalize.py)."""
    return {
        "@timestamp": "2026-11-25T18:00:00.000Z",
        "event": {
            "kind": "event",
            "category": ["network", "session"],
            "type": ["start"],
            "action": "session-started",
            "dataset": "wireguard.state",
            "module": "wireguard",
            "id": "0" * 32,
        },
        "observer": {"hostname": "gw-test", "type": "vpn", "vendor": "WireGuard"},
        "source": {"ip": "203.0.113.11", "port": 51820, "nat": {"ip": "10.222.0.11"}},
        "related": {"ip": ["203.0.113.11", "10.222.0.11"]},
        "wireguard": {"peer": {"public_key": key}, "interface": {"name": "wg0"}},
    }


def flow_event(src: str, dst: str) -> dict[str, Any]:
    return {
        "@timestamp": "2026-11-25T18:00:00.000Z",
        "event": {
            "kind": "event",
            "category": ["network"],
            "type": ["connection"],
            "action": "flow",
            "dataset": "wireguard.flow",
            "module": "wireguard",
            "id": "1" * 32,
        },
        "source": {"ip": src, "address": src},
        "destination": {"ip": dst, "address": dst},
        "wireguard": {"peer": {"attribution": "unknown"}},
    }


def run(t: EnrichIdentity, doc: dict[str, Any]) -> dict[str, Any]:
    out = t(Envelope(doc, EventMeta("test", 0)))
    assert out is not None
    assert validate(out.data) == []
    return out.data


# ---------------------------------------------------------------------------------------- inventory
ALICE_ROW = Identity(
    public_key=ALICE,
    name="alice",
    email="alice@corp.example",
    id="emp-1001",
    full_name="Alice Archer",
    domain="CORP",
    department="Finance",
    device="alice-laptop",
    risk="low",
    sources=("inventory",),
)


@pytest.mark.parametrize("name", ["inventory.yaml", "inventory.csv"])
def test_inventory_yaml_and_csv_give_the_same_identities(name: str) -> None:
    idents, problems = parse_inventory((FIXTURES / name).read_text(), name)
    assert problems == []
    assert [i.public_key for i in idents] == [ALICE, BOB, GRACE]
    assert idents[0] == ALICE_ROW
    assert idents[2] == Identity(
        public_key=GRACE, email="grace@corp.example", department="HR", sources=("inventory",)
    )
    assert idents[0].location == Location(name, 3)


def test_bad_yaml_rows_are_reported_with_line_and_fix_and_good_rows_kept() -> None:
    text = (FIXTURES / "inventory_bad.yaml").read_text()
    idents, problems = parse_inventory(text, "inv.yaml")
    assert [i.name for i in idents] == ["alice"]
    got = [(str(p.location), p.what) for p in problems]
    assert got == [
        ("inv.yaml:4", "public_key is not a WireGuard public key (44 base64 characters)"),
        ("inv.yaml:6", "the row names no user"),
        ("inv.yaml:8", "risk must be one of unknown, low, moderate, medium, high, critical"),
        ("inv.yaml:11", "public_key is already listed at line 2"),
        ("inv.yaml:13", "unknown column(s) manager"),
        ("inv.yaml", "entry 7 is not a mapping"),
        ("inv.yaml:17", "email is not an address"),
    ]
    assert all(p.fix for p in problems)
    assert "not-a-key" not in " ".join(p.render() for p in problems)  # values are never echoed


def test_bad_csv_rows_are_reported_with_line_and_fix() -> None:
    idents, problems = parse_inventory((FIXTURES / "inventory_bad.csv").read_text(), "inv.csv")
    assert [i.name for i in idents] == ["alice"]
    assert [(str(p.location), p.what) for p in problems] == [
        ("inv.csv:3", "public_key is not a WireGuard public key (44 base64 characters)"),
        ("inv.csv:4", "5 values for 4 columns"),
        ("inv.csv:5", "the row names no user"),
    ]


def test_a_file_that_is_no_inventory_raises_a_located_parse_error() -> None:
    with pytest.raises(ParseError) as exc:
        parse_inventory("peers: [\n", "inv.yaml")
    assert exc.value.location is not None and exc.value.location.file == "inv.yaml"
    with pytest.raises(ParseError, match="header"):
        parse_inventory("name,email\nalice,a@b.c\n", "inv.csv")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_inventory_parser_never_raises_anything_but_parse_error(text: str) -> None:
    for name in ("x.yaml", "x.csv"):
        with contextlib.suppress(ParseError):
            parse_inventory(text, name)


@settings(max_examples=100, deadline=None)
@given(
    st.text(
        alphabet=st.characters(blacklist_characters="\r\n,\"'", blacklist_categories=("Cs",)), max_size=60
    )
)
def test_a_bad_csv_row_never_hides_the_good_rows_around_it(junk: str) -> None:
    text = f"public_key,name\n{ALICE},alice\n{junk},{junk}\n{BOB},bob\n"
    idents, problems = parse_inventory(text, "x.csv")
    names = [i.name for i in idents]
    assert names[0] == "alice" and names[-1] == "bob"
    assert all(p.location is not None and p.location.line == 3 for p in problems)


# ---------------------------------------------------------------------------------------- transform
def test_a_known_peer_gets_user_department_device_and_risk(tmp_path: Path) -> None:
    t = build(tmp_path)
    doc = run(t, session_event(ALICE))
    assert doc["user"] == {
        "name": "alice",
        "email": "alice@corp.example",
        "id": "emp-1001",
        "full_name": "Alice Archer",
        "domain": "CORP",
        "risk": {"static_level": "low"},
    }
    assert doc["wireguard"]["user"] == {
        "department": "Finance",
        "device": "alice-laptop",
        "risk": "low",
        "sources": ["inventory"],
    }
    assert doc["wireguard"]["peer"]["known"] is True
    assert doc["related"]["user"] == ["alice", "alice@corp.example", "emp-1001"]
    assert doc["related"]["ip"] == ["203.0.113.11", "10.222.0.11"]  # untouched


def test_an_unknown_peer_is_flagged_and_gets_no_user(tmp_path: Path) -> None:
    t = build(tmp_path)
    doc = run(t, session_event(STRANGER))
    assert doc["wireguard"]["peer"] == {"public_key": STRANGER, "known": False}
    assert "user" not in doc and "user" not in doc["related"]
    assert t.status()["unknown"] == 1


def test_events_without_a_peer_pass_untouched(tmp_path: Path) -> None:
    t = build(tmp_path)
    doc = flow_event("192.0.2.1", "198.51.100.1")
    del doc["wireguard"]
    assert run(t, doc) == {
        k: v for k, v in flow_event("192.0.2.1", "198.51.100.1").items() if k != "wireguard"
    }


def test_an_unattributed_flow_is_attributed_by_tunnel_address(tmp_path: Path) -> None:
    peers = PeerDirectory()
    peers.publish(
        "wg0",
        [
            PeerInfo("wg0", ALICE, "203.0.113.11:51820", ("10.222.0.11/32",), None, 0.0),
            PeerInfo("wg0", BOB, "203.0.113.12:51820", ("10.222.0.12/32",), None, 0.0),
        ],
        at=0.0,
    )
    t = build(tmp_path, peers=peers)
    doc = run(t, flow_event("10.0.5.9", "10.222.0.12"))  # reply traffic: the peer is the destination
    assert doc["wireguard"]["peer"] == {
        "attribution": "tunnel-ip",
        "public_key": BOB,
        "interface": "wg0",
        "tunnel_ip": "10.222.0.12",
        "known": True,
    }
    assert doc["user"]["name"] == "bob"
    assert doc["wireguard"]["user"]["risk"] == "high"
    nobody = run(t, flow_event("10.0.5.9", "10.0.5.10"))
    assert nobody["wireguard"]["peer"] == {"attribution": "unknown"}
    assert "user" not in nobody


def test_user_fields_an_event_already_carries_are_kept_unless_overwrite(tmp_path: Path) -> None:
    idp = session_event(ALICE)
    idp["user"] = {"name": "alice.archer", "email": "alice@idp.example"}
    doc = run(build(tmp_path), idp)
    assert doc["user"]["name"] == "alice.archer" and doc["user"]["email"] == "alice@idp.example"
    assert doc["user"]["id"] == "emp-1001"  # missing fields are filled
    idp2 = session_event(ALICE)
    idp2["user"] = {"name": "alice.archer"}
    doc2 = run(build(tmp_path, overwrite_user=True), idp2)
    assert doc2["user"]["name"] == "alice"


def test_cached_documents_are_not_shared_between_events(tmp_path: Path) -> None:
    t = build(tmp_path)
    a, b = run(t, session_event(ALICE)), run(t, session_event(ALICE))
    a["user"]["risk"]["static_level"] = "critical"
    a["wireguard"]["user"]["sources"].append("x")
    assert b["user"]["risk"]["static_level"] == "low"
    assert b["wireguard"]["user"]["sources"] == ["inventory"]


# ---------------------------------------------------------------------------------------- config comments
def test_config_comment_names_identify_peers_and_merge_under_the_inventory(tmp_path: Path) -> None:
    t = build(tmp_path, config_paths=[str(CONFIGS / "wg-easy_*.conf")])
    grace = run(t, session_event(GRACE))
    assert grace["wireguard"]["peer"]["name"] == "grace"
    assert grace["user"] == {"name": "grace", "email": "grace@corp.example"}  # name from the comment
    assert grace["wireguard"]["user"] == {"department": "HR", "sources": ["inventory", "config"]}
    heidi = run(t, session_event(HEIDI))
    assert heidi["wireguard"]["peer"]["known"] is True
    assert heidi["wireguard"]["peer"]["name"] == "heidi's tablet"
    assert heidi["user"] == {"name": "heidi's tablet"}
    assert heidi["wireguard"]["user"] == {"sources": ["config"]}


def test_config_names_can_stay_peer_names_only(tmp_path: Path) -> None:
    t = build(tmp_path, None, config_paths=[str(CONFIGS / "wg-easy_wg0.conf")], config_name_as_user=False)
    heidi = run(t, session_event(HEIDI))
    assert heidi["wireguard"]["peer"]["name"] == "heidi's tablet"
    assert "user" not in heidi


def test_every_convention_of_the_config_watch_fixtures_names_a_peer() -> None:
    for conf in sorted(CONFIGS.glob("*.conf")):
        if conf.name == "showconf_lab.conf":  # `wg showconf` output: wg drops comments
            continue
        idents, _ = identities_from_config(conf.read_text(), conf.name, name_as_user=True)
        assert idents and all(i.peer_name and i.sources == ("config",) for i in idents), conf.name


def test_a_key_named_in_two_config_files_takes_the_first_files_name(tmp_path: Path) -> None:
    t = build(tmp_path, None, config_paths=[str(CONFIGS / "*.conf")])
    assert t.directory.get(GRACE).peer_name == "peggy"  # exporter_and_others_wg0.conf sorts first


# ---------------------------------------------------------------------------------------- reloads
def test_inventory_edits_take_effect_without_restart(tmp_path: Path) -> None:
    t = build(tmp_path, reload_check_interval_secs=0)
    assert run(t, session_event(STRANGER))["wireguard"]["peer"]["known"] is False
    inv = tmp_path / "inventory.yaml"
    text = inv.read_text() + f"  - public_key: {STRANGER}\n    name: carol\n    department: Sales\n"
    inv.write_text(text)
    os.utime(inv, ns=(1, 1))  # a new mtime even on a coarse clock
    doc = run(t, session_event(STRANGER))
    assert doc["wireguard"]["peer"]["known"] is True and doc["user"]["name"] == "carol"
    assert t.status()["reloads"] == 1


def test_a_bad_edit_keeps_the_last_good_inventory_and_is_counted(tmp_path: Path) -> None:
    t = build(tmp_path, reload_check_interval_secs=0)
    inv = tmp_path / "inventory.yaml"
    inv.write_text("peers: [\n  - {public_key: }\n")
    assert run(t, session_event(ALICE))["user"]["name"] == "alice"
    assert t.status()["reload_errors"] == 1
    assert t.telemetry.errors == {"InventoryError@reload": 1}
    assert "inventory.yaml:" in (t.telemetry.last_error or "")
    # a later good edit is used again; bad rows in it are skipped and counted with their line
    inv.write_text(f"peers:\n  - public_key: {BOB}\n    name: bobby\n  - public_key: nope\n    name: x\n")
    assert run(t, session_event(BOB))["user"]["name"] == "bobby"
    assert run(t, session_event(ALICE))["wireguard"]["peer"]["known"] is False
    assert t.telemetry.errors["InventoryRowError@reload"] == 1
    assert "inventory.yaml:4" in (t.telemetry.last_error or "")


def test_config_file_edits_take_effect_without_restart(tmp_path: Path) -> None:
    conf = tmp_path / "wg0.conf"
    shutil.copy(CONFIGS / "wg-easy_wg0.conf", conf)
    t = build(tmp_path, None, config_paths=[str(tmp_path / "*.conf")], reload_check_interval_secs=0)
    assert run(t, session_event(HEIDI))["wireguard"]["peer"]["name"] == "heidi's tablet"
    conf.write_text(conf.read_text().replace("heidi's tablet", "heidi-ipad"))
    os.utime(conf, ns=(2, 2))
    assert run(t, session_event(HEIDI))["wireguard"]["peer"]["name"] == "heidi-ipad"


def test_strict_start_refuses_bad_rows_listing_every_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        build(tmp_path, "inventory_bad.yaml")
    assert len(exc.value.problems) == 7
    t = build(tmp_path, "inventory_bad.yaml", strict=False)
    assert len(t.directory) == 1 and t.telemetry.errors == {"InventoryRowError@load": 7}


def test_a_missing_inventory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="inventory not found") as exc:
        EnrichIdentity(
            "identity", EnrichIdentityConfig(inventory_path=str(tmp_path / "nope.yaml")), context(tmp_path)
        )
    assert exc.value.fix


def test_the_documented_config_example_is_valid() -> None:
    text = DOCS.read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    cfg = Config.model_validate(yaml.safe_load(block))
    assert [t.type for t in cfg.transforms.values()][:1] == ["enrich_identity"]

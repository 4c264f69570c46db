"""enrich_assets: destinations of flows and the gateway matched, inventory edits live, errors located."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.enrich.geo_mmdb import context, envelope, flow
from tests.support.ecs import validate
from wgsiem.enrich.enrich_assets.config import EnrichAssetsConfig
from wgsiem.enrich.enrich_assets.transform import EnrichAssets
from wgsiem.errors import ConfigError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "enrich"


def build(tmp_path: Path, inventory: str = "assets.yaml", **cfg: Any) -> EnrichAssets:
    path = tmp_path / inventory
    if not path.exists():
        shutil.copy(FIXTURES / inventory, path)
    config = EnrichAssetsConfig(inventory_path=str(path), **cfg)
    return EnrichAssets("assets", config, context(tmp_path, "assets", "enrich_assets"))


def run(t: EnrichAssets, doc: dict[str, Any]) -> dict[str, Any]:
    out = t(envelope(doc))
    assert out is not None
    return out.data


def wg_doc(hostname: str = "gw-test") -> dict[str, Any]:
    doc = flow("203.0.113.11")
    doc["observer"] = {"hostname": hostname, "type": "vpn", "vendor": "WireGuard"}
    return doc


@pytest.mark.parametrize("inventory", ["assets.yaml", "assets.csv"])
def test_flow_destination_is_matched_by_longest_prefix(tmp_path: Path, inventory: str) -> None:
    t = build(tmp_path, inventory)
    doc = run(t, flow("10.222.0.11", "10.20.5.10"))
    assert doc["wireguard"]["asset"] == {
        "destination": {
            "name": "hr-db-01",
            "network": "10.20.5.10/32",
            "owner": "hr-it@corp.example",
            "department": "HR",
            "criticality": 5,
            "criticality_level": "critical",
            "environment": "production",
            "tags": ["database", "pii"],
        }
    }
    assert run(t, flow("10.222.0.11", "10.20.5.77"))["wireguard"]["asset"]["destination"]["name"] == (
        "hr-database-subnet"
    )
    assert "wireguard" not in run(t, flow("10.222.0.11", "192.0.2.50"))
    assert validate(doc) == []


def test_the_gateway_itself_is_matched_by_observer_hostname(tmp_path: Path) -> None:
    t = build(tmp_path)
    doc = run(t, wg_doc())
    assert doc["wireguard"]["asset"]["observer"]["name"] == "vpn-gateway"
    assert doc["wireguard"]["asset"]["observer"]["criticality_level"] == "very_high"
    assert "asset" not in run(t, wg_doc("other-gw")).get("wireguard", {})
    assert "wireguard" not in run(build(tmp_path, observer=False), wg_doc())


def test_the_gateway_is_matched_by_observer_ip_when_no_hostname_row(tmp_path: Path) -> None:
    t = build(tmp_path)
    doc = wg_doc("unlisted")
    doc["observer"]["ip"] = ["10.20.9.2"]
    assert run(t, doc)["wireguard"]["asset"]["observer"]["name"] == "dc-01"


def test_source_side_is_matched_when_configured(tmp_path: Path) -> None:
    t = build(tmp_path, fields=["source", "destination"])
    doc = run(t, flow("10.30.0.5", "fd00:20::1"))
    assert doc["wireguard"]["asset"]["source"]["name"] == "staging"
    assert doc["wireguard"]["asset"]["destination"]["name"] == "datacenter-v6"


def test_an_inventory_edit_takes_effect_without_restart(tmp_path: Path) -> None:
    t = build(tmp_path, reload_check_interval_secs=0)
    assert run(t, flow(None, "10.20.5.10"))["wireguard"]["asset"]["destination"]["criticality"] == 5
    inv = tmp_path / "assets.yaml"
    text = inv.read_text().replace("    criticality: 5\n", "    criticality: 2\n")
    text += "  - cidr: 192.0.2.0/24\n    name: new-partner-net\n    criticality: low\n"
    tmp = tmp_path / "assets.yaml.new"
    tmp.write_text(text)
    os.replace(tmp, inv)
    assert run(t, flow(None, "10.20.5.10"))["wireguard"]["asset"]["destination"]["criticality"] == 2
    assert run(t, flow(None, "192.0.2.50"))["wireguard"]["asset"]["destination"]["name"] == "new-partner-net"
    assert t.status()["reloads"] == 1 and t.status()["assets"] == 8


def test_bad_rows_in_a_reload_are_skipped_and_counted_with_their_line(tmp_path: Path) -> None:
    t = build(tmp_path, reload_check_interval_secs=0)
    inv = tmp_path / "assets.yaml"
    inv.write_text(inv.read_text() + "  - cidr: 10.99.0.0/33\n    name: typo\n")
    doc = run(t, flow(None, "10.20.5.10"))
    assert doc["wireguard"]["asset"]["destination"]["name"] == "hr-db-01"  # the good rows are in use
    st = t.status()
    assert len(st["problems"]) == 1 and f"{inv}:51" in st["problems"][0]
    assert t.telemetry.errors["InventoryRowError@load"] == 1


def test_an_unreadable_reload_keeps_the_last_good_inventory(tmp_path: Path) -> None:
    t = build(tmp_path, reload_check_interval_secs=0)
    inv = tmp_path / "assets.yaml"
    inv.write_text("assets: [\n")
    assert run(t, flow(None, "10.20.5.10"))["wireguard"]["asset"]["destination"]["name"] == "hr-db-01"
    inv.unlink()
    assert run(t, flow(None, "10.20.5.10"))["wireguard"]["asset"]["destination"]["name"] == "hr-db-01"
    st = t.status()
    assert st["reload_errors"] == 2 and "inventory not found" in st["last_error"]
    assert t.telemetry.errors["InventoryError@reload"] == 2


def test_strict_build_lists_every_bad_row(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build(tmp_path, "assets_bad.yaml")
    text = info.value.render()
    assert len(info.value.problems) == 6
    for line in (5, 7, 10, 13, 14, 16):
        assert f"assets_bad.yaml:{line} " in text


def test_lenient_build_uses_the_good_rows(tmp_path: Path) -> None:
    t = build(tmp_path, "assets_bad.csv", strict=False)
    assert t.status()["assets"] == 2 and len(t.status()["problems"]) == 4
    assert (
        run(t, flow(None, "10.20.9.1"))["wireguard"]["asset"]["destination"]["name"] == "fine-after-bad-ones"
    )


def test_missing_inventory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        EnrichAssets(
            "assets",
            EnrichAssetsConfig(inventory_path=str(tmp_path / "nope.yaml")),
            context(tmp_path, "assets", "enrich_assets"),
        )
    assert f"{tmp_path / 'nope.yaml'}" in info.value.render() and "inventory_path" in info.value.render()


def test_cache_is_reported_and_matches_are_independent_copies(tmp_path: Path) -> None:
    t = build(tmp_path)
    a = run(t, flow(None, "10.20.5.10"))
    b = run(t, flow(None, "10.20.5.10"))
    a["wireguard"]["asset"]["destination"]["tags"].append("mutated")
    assert b["wireguard"]["asset"]["destination"]["tags"] == ["database", "pii"]
    assert t.status()["cache"]["hits"] == 1 and t.status()["events_matched"] == 2

"""OCSF documents validated by OCSF's own schema (``tests/schema/ocsf_official.py``): every golden,
every document the mapper makes of every real fixture, every alert the real detection engine raises
on its rules' samples, in the release the documents declare and in the newest one packaged.

The checks of the validator itself come last: each shows it rejects one kind of mistake, so a
validator that accepted everything could not pass them.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.schema.goldens import examples, golden, ids
from tests.schema.ocsf_official import NEWEST, problems
from wgsiem.schema import to_ocsf
from wgsiem.schema.ocsf import OCSF_VERSION

CASES = examples()
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("source", "action"), CASES, ids=ids(CASES))
def test_golden_is_valid_in_the_release_it_declares(source: str, action: str) -> None:
    doc = golden("ocsf", source, action)
    assert doc["metadata"]["version"] == OCSF_VERSION
    assert problems(doc) == []


@pytest.mark.parametrize(("source", "action"), CASES, ids=ids(CASES))
def test_golden_is_valid_in_the_newest_packaged_release(source: str, action: str) -> None:
    assert problems(golden("ocsf", source, action), NEWEST) == []


def test_the_declared_release_is_the_oldest_that_accepts_every_golden() -> None:
    """1.3.0 lacks Detection Finding's ``is_alert``, ``connection_info.community_uid`` and a Base
    Event's ``device``: the mapper declares 1.4.0 because of them."""
    rejected = {
        p.split(":")[0] + ":" + p.split("(")[-1]
        for case in CASES
        for p in problems(golden("ocsf", *case), "1.3.0")
    }
    assert rejected == {
        "<event>:'is_alert' was unexpected)",
        "connection_info:'community_uid' was unexpected)",
        "<event>:'device' was unexpected)",
    }


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_schema_goldens", ROOT / "scripts" / "gen_schema_goldens.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _every_real_document() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ECS document the golden generator reads (not only the first of each action): the docs'
    real examples and each source's replay of its verbatim fixtures."""
    gen = _generator()
    for doc in gen._docs_md("docs/events.md"):
        yield "wg_state", doc
    for name in ("host", "netflow", "context"):
        for doc in gen._docs_md(f"docs/sources/{name}.md"):
            yield name, doc
    wggo_catalogue, wg_quick = gen._write_inputs()
    kernel_files = [*gen._rel((gen.FIX / "kernel_log").glob("*.txt")), wg_quick]
    for f in kernel_files:
        os.utime(ROOT / f, (gen.KERNEL_LOG_MTIME, gen.KERNEL_LOG_MTIME))
    for doc in gen._replay("kernel_log", kernel_files, journal=False):
        yield "kernel_log", doc
    wggo_files = [*gen._rel((gen.FIX / "wggo_log").glob("*.log")), wggo_catalogue]
    for doc in gen._replay("wggo_log", wggo_files, gen._wggo_peers(), timezone="UTC"):
        yield "wggo_log", doc
    for doc in gen._replay("netflow", gen._rel((gen.FIX / "netflow").glob("softflowd_*.pcap"))):
        yield "netflow", doc
    context = (p for p in (gen.FIX / "context").iterdir() if p.suffix in (".ndjson", ".json"))
    for doc in gen._replay("context", gen._rel(context)):
        yield "context", doc
    for doc in gen._config_watch():
        yield "config_watch", doc


def test_every_document_of_every_real_fixture_is_valid() -> None:
    seen: dict[str, int] = {}
    bad: list[str] = []
    tz = os.environ.get("TZ")
    try:  # the generator reads the fixtures' local times as UTC: it sets TZ when imported
        for source, doc in _every_real_document():
            seen[source] = seen.get(source, 0) + 1
            bad += [
                f"{source} {doc['event']['action']} {doc['event']['id']}: {p}" for p in problems(to_ocsf(doc))
            ]
    finally:
        if tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = tz
        time.tzset()
    assert bad == []
    assert set(seen) == {"wg_state", "host", "netflow", "context", "kernel_log", "wggo_log", "config_watch"}
    assert sum(seen.values()) > 500  # every replayed record, not one per action


def test_every_alert_of_the_real_detection_engine_is_valid(tmp_path: Path) -> None:
    """Detection Finding beyond the two goldens: the alert of every matching sample of every
    built-in Sigma rule, raised by the real engine, and the samples themselves."""
    from wgsiem.detect import BUILTIN_RULES, DetectConfig, DetectionEngine, load_rules
    from wgsiem.enrich.base import TransformContext
    from wgsiem.event import Envelope, EventMeta
    from wgsiem.pipeline.telemetry import TelemetryRegistry
    from wgsiem.sources.peer_directory import PeerDirectory

    rules = [r for r in load_rules([BUILTIN_RULES]) if r.kind == "sigma"]
    assert rules
    bad: list[str] = []
    alerts = 0
    for rule in rules:
        for sample in rule.samples_match:
            bad += [f"{rule.name} sample: {p}" for p in problems(to_ocsf(sample))]
            tel = TelemetryRegistry().register("detect", "transform", "detect")
            ctx = TransformContext("gw-test", tmp_path, tel, PeerDirectory())
            engine = DetectionEngine(
                "detect", DetectConfig(), ctx, rules=[rule], clock=lambda: 1_764_000_000.0
            )
            engine(Envelope(copy.deepcopy(sample), EventMeta("test-source", 0)))
            for alert in engine.drain_alerts():
                alerts += 1
                doc = to_ocsf(alert.data)
                assert doc["class_uid"] == 2004
                bad += [f"{rule.name} alert: {p}" for p in problems(doc)]
    assert bad == []
    assert alerts >= len(rules)


# --- the validator rejects what it should -------------------------------------------------------


def _tunnel() -> dict[str, Any]:
    doc = copy.deepcopy(golden("ocsf", "wg_state", "session-started"))
    assert problems(doc) == []
    return doc


def test_validator_rejects_an_attribute_outside_the_class() -> None:
    doc = _tunnel()
    doc["wireguard"] = {"peer": "x"}
    assert any("'wireguard' was unexpected" in p for p in problems(doc))


def test_validator_accepts_anything_under_unmapped() -> None:
    doc = _tunnel()
    doc["unmapped"]["anything"] = {"at": ["all", 1]}
    assert problems(doc) == []


def test_validator_rejects_an_attribute_unknown_to_a_nested_object() -> None:
    doc = _tunnel()
    doc["src_endpoint"]["peer_key"] = "x"
    assert any(p.startswith("src_endpoint:") and "'peer_key' was unexpected" in p for p in problems(doc))


def test_validator_rejects_an_activity_the_class_does_not_define() -> None:
    doc = _tunnel()
    doc["activity_id"], doc["type_uid"] = 7, 401407
    assert any(p.startswith("activity_id:") for p in problems(doc))


def test_validator_rejects_a_type_uid_that_is_not_class_times_100_plus_activity() -> None:
    doc = _tunnel()
    doc["type_uid"] = 401402
    assert any("type_uid 401402 is not class_uid*100 + activity_id = 401401" in p for p in problems(doc))


@pytest.mark.parametrize(
    ("field", "value"),
    [("category_uid", 3), ("severity_id", 7), ("status_id", 5), ("class_uid", 4014.5)],
)
def test_validator_rejects_a_value_outside_the_enum(field: str, value: object) -> None:
    doc = _tunnel()
    doc[field] = value
    assert problems(doc) != []


def test_validator_rejects_a_wrong_type() -> None:
    doc = _tunnel()
    doc["time"] = "2026-11-25T16:09:04Z"
    assert any(p.startswith("time:") for p in problems(doc))


def test_validator_rejects_an_address_that_is_not_one() -> None:
    doc = _tunnel()
    doc["src_endpoint"]["ip"] = "203.0.113.300"
    assert any(p.startswith("src_endpoint.ip:") for p in problems(doc))


def test_validator_rejects_a_missing_required_attribute() -> None:
    doc = copy.deepcopy(golden("ocsf", "context", "edr-alert"))
    assert doc["class_uid"] == 2004
    del doc["finding_info"]
    assert any("'finding_info' is a required property" in p for p in problems(doc))


def test_validator_rejects_a_profile_attribute_when_the_profile_is_not_declared() -> None:
    doc = copy.deepcopy(golden("ocsf", "wg_state", "transfer"))
    assert doc["class_uid"] == 4001
    del doc["metadata"]["profiles"]
    assert any("'device' was unexpected" in p for p in problems(doc))


def test_validator_rejects_a_sibling_that_is_not_the_caption() -> None:
    doc = _tunnel()
    doc["activity_name"] = "Close"
    assert problems(doc) == ["activity_id: 1 is 'Open' but activity_name is 'Close'"]


def test_validator_rejects_a_release_it_does_not_know() -> None:
    doc = _tunnel()
    doc["metadata"]["version"] = "1.99.0"
    assert problems(doc) == ["metadata.version '1.99.0' is no OCSF release the schema package ships"]


# --- what the validator made the mapper change ----------------------------------------------------


def test_network_activity_carries_its_user_as_the_actor() -> None:
    """Network Activity has no ``user`` (OCSF 1.4.0–1.8.0); an attributed flow names it as the actor."""
    ecs = copy.deepcopy(golden("ecs", "netflow", "flow"))
    ecs["user"] = {"name": "alice"}
    doc = to_ocsf(ecs)
    assert doc["class_uid"] == 4001
    assert doc["actor"] == {"user": {"name": "alice"}}
    assert "user" not in doc
    assert problems(doc) == []


def test_a_tunnel_event_without_interface_name_or_address_has_no_tunnel_interface() -> None:
    ecs = copy.deepcopy(golden("ecs", "wg_state", "session-started"))
    del ecs["wireguard"]["interface"]["name"], ecs["observer"]["ingress"], ecs["source"]["nat"]
    doc = to_ocsf(ecs)
    assert "tunnel_interface" not in doc
    assert problems(doc) == []


def test_activity_other_keeps_the_action_as_activity_name_and_the_caption_as_type_name() -> None:
    doc = golden("ocsf", "wg_state", "endpoint-changed")
    assert (doc["activity_id"], doc["activity_name"]) == (99, "Endpoint Changed")
    assert (doc["type_uid"], doc["type_name"]) == (401499, "Tunnel Activity: Other")

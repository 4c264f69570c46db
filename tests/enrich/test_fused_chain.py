"""The fused enrichment pass (``wgsiem.enrich.fused_chain``) changes nothing but speed.

* byte-identical documents (key order included) to the member transforms run one after the other, on
  the mixed stream of ``test_enrich_cache``, on the benchmark's seeded workload, on random streams, on
  the golden ECS documents of every action (``tests/schema``) and the lab documents of ``tests/enrich``;
* every subset of geo → identity → assets → risk in order is fused, anything else is left alone;
* an output document edited in place does not reach the caches or the next event;
* a swapped database, an edited identity or asset inventory, an LDAP refresh and a new peer directory
  empty the fused caches at once;
* counters, telemetry and cache figures are still reported per member.
"""

from __future__ import annotations

import copy
import itertools
import json
import random
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.enrich.geo_mmdb import write_asn
from tests.enrich.test_enrich_cache import (
    FLOW,
    PEERS,
    _walk,
    chain,
    close,
    directory,
    key_of,
    run,
    stream,
    tunnel,
)
from tests.support.ecs import validate
from wgsiem.enrich.enrich_identity.inventory import Identity
from wgsiem.enrich.fused_chain import FusedEnrichment, fuse_transforms
from wgsiem.event import Envelope, EventMeta
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo

ROOT = Path(__file__).resolve().parents[2]
IDS = ("geo", "who", "assets", "risk")


def pair(tmp: Path, peers: PeerDirectory, members: tuple[int, ...] = (0, 1, 2, 3)) -> tuple[Any, list[Any]]:
    """(a fused chain, the same members built again and left unfused)."""
    fused = [(IDS[i], t) for i, t in enumerate(chain(tmp, peers, cached=True)) if i in members]
    plain = [t for i, t in enumerate(chain(tmp, peers, cached=True)) if i in members]
    out = fuse_transforms(fused)
    assert len(out) == 1 and isinstance(out[0][1], FusedEnrichment)
    return out[0][1], plain


def both(fused: Any, plain: list[Any], docs: list[dict[str, Any]]) -> tuple[list[bytes], list[bytes]]:
    return run([fused], docs, clear=False), run(plain, docs, clear=False)


def test_the_mixed_stream_comes_out_byte_identical(tmp_path: Path) -> None:
    fused, plain = pair(tmp_path, directory())
    try:
        docs = stream(3_000, seed=7)
        got, want = both(fused, plain, docs + docs)
        assert got == want
        # most events took the fused pass, and its caches were used
        assert fused.slow_path < len(got) * 0.4
        stats = fused.cache_stats()
        for name in ("fused.sides", "fused.peers", "fused.risk"):
            assert stats[name]["hit_rate"] > 0.5, (name, stats[name])
        for raw, doc in zip(got[:300], docs, strict=False):
            if validate(copy.deepcopy(doc)) == []:  # the stream holds bad addresses on purpose
                assert validate(orjson.loads(raw)) == []
    finally:
        close([fused, *plain])


@pytest.mark.parametrize("members", [m for n in (2, 3) for m in itertools.combinations(range(4), n)])
def test_every_ordered_subset_is_fused_and_identical(tmp_path: Path, members: tuple[int, ...]) -> None:
    fused, plain = pair(tmp_path, directory(), members)
    try:
        assert fused.transform_id == "+".join(IDS[i] for i in members)
        docs = stream(400, seed=sum(members))
        got, want = both(fused, plain, docs + docs)
        assert got == want
    finally:
        close([fused, *plain])


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60))
def test_any_mixed_stream_is_identical_fused(tmp_path_factory: Any, seed: int, n: int) -> None:
    fused, plain = pair(tmp_path_factory.mktemp("fused"), directory())
    try:
        docs = stream(n, seed)
        got, want = both(fused, plain, docs + docs)
        assert got == want
    finally:
        close([fused, *plain])


def _bench_module() -> Any:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import bench_enrich_chain
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return bench_enrich_chain


def test_the_benchmark_workload_comes_out_byte_identical(tmp_path: Path) -> None:
    b = _bench_module()
    rnd = random.Random(42)
    hosts = b.write_inventories(tmp_path, 300, 200)
    pool = b.public_pool(300 + 500, rnd)
    peers = b.peer_directory(300, pool[:300])
    wl = b.Workload(300, pool[:300], pool[300:], hosts)
    fused_chain = fuse_transforms(b.build(tmp_path, peers))
    plain = b.build(tmp_path, peers)
    try:
        assert [t for t, _ in fused_chain] == ["geo+who+assets+risk"]
        docs = [orjson.loads(x) for x in wl.events(6_000, seed=3, new_rate=0.05)]
        got = run([p for _, p in fused_chain], docs, clear=False)
        want = run([p for _, p in plain], docs, clear=False)
        assert got == want
        assert fused_chain[0][1].slow_path == 0  # the workload is what sources emit: all fused
    finally:
        close([p for _, p in fused_chain] + [p for _, p in plain])


def _goldens() -> list[dict[str, Any]]:
    """Every golden ECS document of tests/schema, and the lab documents of tests/enrich with what
    enrichment wrote taken out again (so they go through the fused pass)."""
    docs: list[dict[str, Any]] = []
    for p in sorted((ROOT / "tests" / "fixtures" / "schema" / "ecs").rglob("*.json")):
        d = json.loads(p.read_text())
        for x in d if isinstance(d, list) else [d]:
            if isinstance(x, dict) and isinstance(x.get("event"), dict):
                docs.append(x)
    for name in ("lab_session_started_enriched.json", "lab_interface_added_enriched.json"):
        d = json.loads((ROOT / "tests" / "fixtures" / "enrich" / name).read_text())
        docs.append(copy.deepcopy(d))  # as enriched: the slow path
        wg = d["wireguard"]
        for k in ("geo", "asset", "risk"):
            wg.pop(k, None)
        d["event"].pop("risk_score", None)
        for side in ("source", "destination"):
            if isinstance(d.get(side), dict):
                d[side].pop("geo", None)
                d[side].pop("as", None)
        docs.append(d)
    return docs


def test_golden_documents_come_out_byte_identical(tmp_path: Path) -> None:
    goldens = _goldens()
    assert len(goldens) >= 10
    fused, plain = pair(tmp_path, directory())
    try:
        got, want = both(fused, plain, goldens + goldens)
        assert got == want
        assert fused.events - fused.slow_path >= len(goldens) // 2
    finally:
        close([fused, *plain])


def test_only_runs_in_order_are_fused(tmp_path: Path) -> None:
    geo, who, assets, risk = chain(tmp_path, directory(), cached=True)
    other = object()
    try:
        got = fuse_transforms([("g", geo), ("x", other), ("w", who), ("a", assets), ("r", risk)])
        assert [t for t, _ in got] == ["g", "x", "w+a+r"]
        got = fuse_transforms([("r", risk), ("g", geo)])
        assert [t for t, _ in got] == ["r", "g"]
        got = fuse_transforms([("a", assets), ("w", who), ("r", risk)])
        assert [t for t, _ in got] == ["a", "w+r"]
        assert fuse_transforms([("g", geo)]) == [("g", geo)]
    finally:
        close([geo, who, assets, risk])


def test_an_output_edited_in_place_leaves_the_caches_and_the_next_event_alone(tmp_path: Path) -> None:
    fused, plain = pair(tmp_path, directory())
    docs = [
        {
            "event": {"kind": "event", "action": "session-started", "id": "a"},
            "observer": {"hostname": "gw-cache"},
            "source": {"ip": "192.0.2.7", "nat": {"ip": tunnel(0)}},
            "destination": {"ip": "10.20.5.10"},
            "related": {"ip": ["192.0.2.7"]},
            "wireguard": {"peer": {"public_key": key_of(0)}},
        },
        {**FLOW, "wireguard": {"peer": {}}},
        {**FLOW, "source": {"ip": "203.0.113.12"}, "wireguard": {"peer": {"public_key": key_of(3)}}},
    ]
    try:
        for doc in docs:
            first = run([fused], [doc], clear=False)[0]
            assert first == run(plain, [doc], clear=False)[0]
            env: Envelope | None = fused(Envelope(copy.deepcopy(doc), EventMeta("t", 0)))
            assert env is not None and orjson.dumps(env.data) == first
            before = fused.slow_path
            for x in _walk(env.data):
                if type(x) is dict:
                    for k in list(x):
                        if type(x[k]) not in (dict, list):
                            x[k] = "X"
                    x["added"] = 1
                else:
                    x.append("X")
            assert run([fused], [doc], clear=False)[0] == first
            assert fused.slow_path == before  # the fused pass answered, from its caches
    finally:
        close([fused, *plain])


def _enrich(fused: Any, doc: dict[str, Any]) -> dict[str, Any]:
    before = fused.slow_path
    out: dict[str, Any] = orjson.loads(run([fused], [doc], clear=False)[0])
    assert fused.slow_path == before
    return out


def test_an_asset_inventory_edit_empties_the_fused_caches(tmp_path: Path) -> None:
    fused, plain = pair(tmp_path, directory())
    try:
        before = _enrich(fused, FLOW)
        assert before["wireguard"]["asset"]["destination"]["name"] == "hr-db"
        path = tmp_path / "assets.csv"
        path.write_text(
            path.read_text().replace("hr-db,dba@corp.example,HR,5", "payroll-db,dba@corp.example,HR,2")
        )
        fused.assets.check_now()
        after = _enrich(fused, FLOW)
        dst = after["wireguard"]["asset"]["destination"]
        assert (dst["name"], dst["criticality"]) == ("payroll-db", 2)
        assert after["event"]["risk_score"] < before["event"]["risk_score"]
        assert "payroll-db" in orjson.dumps(after["wireguard"]["risk"]).decode()
    finally:
        close([fused, *plain])


def test_an_asset_inventory_edit_is_seen_by_the_fused_timer(tmp_path: Path) -> None:
    fused, plain = pair(tmp_path, directory())
    try:
        assert _enrich(fused, FLOW)["wireguard"]["asset"]["destination"]["name"] == "hr-db"
        path = tmp_path / "assets.csv"
        path.write_text(path.read_text().replace("hr-db,", "hr-db-2,"))
        fused.assets._next_check = 0.0  # the member's timer is due
        fused._next_check = 0.0
        assert _enrich(fused, FLOW)["wireguard"]["asset"]["destination"]["name"] == "hr-db-2"
    finally:
        close([fused, *plain])


def test_an_identity_inventory_edit_empties_the_fused_caches(tmp_path: Path) -> None:
    fused, plain = pair(tmp_path, directory())
    try:
        assert _enrich(fused, FLOW)["user"]["name"] == "user1"
        path = tmp_path / "identities.yaml"
        path.write_text(path.read_text().replace("name: user1,", "name: renamed1,"))
        fused.check_now()
        assert _enrich(fused, FLOW)["user"]["name"] == "renamed1"
    finally:
        close([fused, *plain])


def test_an_ldap_refresh_empties_the_fused_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The directory's LDAP refresh (run by its thread) with the server's answer stood in for: what
    matters here is that a refreshed directory reaches events the fused caches answered before."""
    from wgsiem.enrich.enrich_identity import directory as directory_module

    fused, plain = pair(tmp_path, directory())
    try:
        assert _enrich(fused, FLOW)["user"]["name"] == "user1"
        d = fused.identity.directory
        d.config = d.config.model_copy(
            update={"ldap": {"url": "ldap://127.0.0.1:1", "base_dn": "dc=x", "key_attribute": "k"}}
        )
        ident = Identity(public_key=key_of(1), name="from-ldap", sources=("ldap",))
        monkeypatch.setattr(directory_module, "fetch_identities", lambda _cfg: ([ident], []))
        assert d.refresh_ldap()
        # the inventory still wins field by field; a peer only LDAP knows shows LDAP's name
        doc = {**FLOW, "wireguard": {"peer": {"public_key": key_of(3)}}}
        assert _enrich(fused, doc)["wireguard"]["peer"]["known"] is False
        ident3 = Identity(public_key=key_of(3), name="ldap-only", sources=("ldap",))
        monkeypatch.setattr(directory_module, "fetch_identities", lambda _cfg: ([ident3], []))
        assert d.refresh_ldap()
        got = _enrich(fused, doc)
        assert (got["wireguard"]["peer"]["known"], got["user"]["name"]) == (True, "ldap-only")
    finally:
        close([fused, *plain])


def test_a_swapped_database_empties_the_fused_caches(tmp_path: Path) -> None:
    fused, plain = pair(tmp_path, directory())
    doc = {"event": {"kind": "event", "id": "c"}, "source": {"ip": "203.0.113.77"}, "wireguard": {}}
    try:
        assert _enrich(fused, doc)["source"]["as"]["number"] == 64500
        write_asn(tmp_path / "asn.mmdb", {"203.0.113.0/24": (64999, "Moved Networks")})
        fused.geo.check_now()
        got = _enrich(fused, doc)["source"]["as"]
        assert got == {"number": 64999, "organization": {"name": "Moved Networks"}}
    finally:
        close([fused, *plain])


def test_a_new_peer_directory_moves_a_cached_tunnel_address(tmp_path: Path) -> None:
    peers = directory()
    fused, plain = pair(tmp_path, peers)
    doc = {**FLOW, "wireguard": {"peer": {"attribution": "unknown"}}}
    try:
        assert _enrich(fused, doc)["wireguard"]["peer"]["public_key"] == key_of(1)
        peers.publish("wg0", [PeerInfo("wg0", key_of(2), None, (f"{tunnel(1)}/32",), None, 0.0)], at=1.0)
        got = _enrich(fused, doc)["wireguard"]["peer"]
        assert (got["public_key"], got["attribution"], got.get("name")) == (
            key_of(2),
            "tunnel-ip",
            None,
        )
    finally:
        close([fused, *plain])


def test_counters_and_telemetry_are_reported_per_member(tmp_path: Path) -> None:
    fused, plain = pair(tmp_path, directory())
    try:
        docs = stream(500, seed=11)
        got, want = both(fused, plain, docs)
        assert got == want
        fused_status = fused.status()
        for (tid, member), other in zip(fused.members, plain, strict=True):
            s, o = fused_status["members"][tid], other.status()
            for k in ("known", "unknown", "by_tunnel_ip", "events_matched", "events_scored", "by_level"):
                if k in o:
                    assert s[k] == o[k], (tid, k)
            for k in ("without_geo", "invalid_addresses", "lookup_errors", "mean_score"):
                if k in o:
                    assert s[k] == o[k], (tid, k)
            assert dict(member.telemetry.errors) == dict(other.telemetry.errors), tid
            assert member.telemetry.received == member.telemetry.sent == len(docs)
        stats = fused.cache_stats()
        assert {"fused.sides", "fused.peers", "fused.observer", "fused.risk"} <= set(stats)
        assert {"geo.addresses", "who.peers", "assets.addresses", "risk.results"} <= set(stats)
        assert fused_status["events"] == len(docs)
    finally:
        close([fused, *plain])


def test_the_service_builder_fuses_the_configured_chain(tmp_path: Path) -> None:
    from wgsiem.pipeline.telemetry import TelemetryRegistry
    from wgsiem.service import build_transforms

    b = _bench_module()
    b.write_inventories(tmp_path, 10, 10)
    from wgsiem.config.loader import load_config_text

    cfg = load_config_text(b.CONFIG.format(tmp=tmp_path, mm=b.MAXMIND), "t.yaml")
    kw: dict[str, Any] = {"hostname": "gw", "state_dir": tmp_path, "peers": PeerDirectory()}
    fused = build_transforms(dict(cfg.transforms), TelemetryRegistry(), **kw)
    plain = build_transforms(dict(cfg.transforms), TelemetryRegistry(), fuse=False, **kw)
    try:
        assert [t for t, _ in fused] == ["geo+who+assets+risk"]
        assert [t for t, _ in plain] == ["geo", "who", "assets", "risk"]
    finally:
        close([p for _, p in fused] + [p for _, p in plain])


def test_peers_outside_the_stream_are_still_unknown(tmp_path: Path) -> None:
    fused, plain = pair(tmp_path, directory())
    doc = {**FLOW, "wireguard": {"peer": {"public_key": key_of(PEERS + 5)}}}
    try:
        got, want = both(fused, plain, [doc, doc])
        assert got == want
        assert orjson.loads(got[1])["wireguard"]["risk"]["factors"][-1]["name"] == "unknown_peer"
    finally:
        close([fused, *plain])

"""The enrichment caches change nothing but speed.

* geo + identity + assets + risk with every cache on give the same documents, byte for byte (key order
  included), as the same chain with every cache off or emptied before each event, on a mixed stream:
  repeated and new addresses, IPv4 and IPv6, private/documentation/global scopes, known and unknown
  peers, flows attributed by tunnel address, events with none of the enriched fields, bad addresses;
* the cached fragments are shared between events only inside the caches: an event that is edited
  after enrichment (as ``apply_privacy`` does) leaves the next event's fragments alone;
* a reloaded inventory, identity file, database or peer directory empties the caches built from it,
  so an edit takes effect at once;
* the fast ``global`` answer of :func:`address_scope` for plain IPv4 blocks is the answer of the
  ``ipaddress`` properties it replaces.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import ipaddress
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.enrich.geo_mmdb import write_anonymous, write_asn, write_city
from tests.support.ecs import validate
from wgsiem.enrich.base import TransformContext
from wgsiem.enrich.enrich_assets.config import EnrichAssetsConfig
from wgsiem.enrich.enrich_assets.transform import EnrichAssets
from wgsiem.enrich.enrich_geo import scope
from wgsiem.enrich.enrich_geo.config import EnrichGeoConfig
from wgsiem.enrich.enrich_geo.transform import EnrichGeo
from wgsiem.enrich.enrich_identity.config import EnrichIdentityConfig
from wgsiem.enrich.enrich_identity.transform import EnrichIdentity
from wgsiem.enrich.score_risk.config import ScoreRiskConfig
from wgsiem.enrich.score_risk.transform import ScoreRisk
from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo

PEERS = 12
PUBLIC = [
    "203.0.113.12",  # documentation, placed by the test databases, Tor exit
    "203.0.113.77",
    "198.51.100.5",  # hosting
    "198.51.100.200",
    "192.0.2.7",  # VPN + public proxy, KP
    "2001:db8::1",
    "2001:db8:1::5",
    "81.2.69.160",  # global, unknown to the test databases
    "8.8.8.8",
    "2a02:cf40::1",
    "::ffff:203.0.113.77",  # IPv4-mapped
    "fe80::1%eth0",  # link-local with a zone
]
BAD = ["not-an-ip", "300.1.2.3", "", "10.0.0.1/24"]


def key_of(i: int) -> str:
    return base64.b64encode(hashlib.sha256(f"cache-peer-{i}".encode()).digest()).decode()


def tunnel(i: int) -> str:
    return f"10.99.0.{i + 2}"


def write_files(tmp: Path) -> dict[str, Path]:
    ident = ["peers:"]
    for i in range(PEERS):
        if i % 4 == 3:
            continue  # unknown to the inventory
        risk = ("low", "high", "critical")[i % 3]
        ident.append(
            f"  - {{public_key: {key_of(i)}, name: user{i}, email: user{i}@corp.example, id: e{i},"
            f" department: D{i % 2}, device: dev-{i}, risk: {risk}}}"
        )
    (tmp / "identities.yaml").write_text("\n".join(ident) + "\n")
    (tmp / "assets.csv").write_text(
        "cidr,hostname,name,owner,department,criticality,environment,tags\n"
        "10.20.0.0/16,,servers,ops@corp.example,IT,3,production,server\n"
        "10.20.5.10,,hr-db,dba@corp.example,HR,5,production,database;pii\n"
        "10.30.0.0/24,,lab,lab@corp.example,R&D,1,lab,\n"
        "2001:db8:aa::/48,,v6-dc,ops@corp.example,IT,4,production,domain-controller\n"
        ",gw-cache,vpn-gateway,netops@corp.example,IT,4,production,vpn\n"
    )
    return {
        "city": write_city(tmp / "city.mmdb"),
        "asn": write_asn(tmp / "asn.mmdb"),
        "anon": write_anonymous(tmp / "anon.mmdb"),
    }


def directory() -> PeerDirectory:
    d = PeerDirectory()
    d.publish(
        "wg0",
        [
            PeerInfo("wg0", key_of(i), f"{PUBLIC[i % 6]}:51820", (f"{tunnel(i)}/32",), None, 0.0)
            for i in range(PEERS)
        ],
        at=0.0,
    )
    return d


def chain(tmp: Path, peers: PeerDirectory, *, cached: bool) -> list[Any]:
    files = (
        write_files(tmp)
        if not (tmp / "assets.csv").exists()
        else {
            "city": tmp / "city.mmdb",
            "asn": tmp / "asn.mmdb",
            "anon": tmp / "anon.mmdb",
        }
    )
    reg = TelemetryRegistry()

    def ctx(tid: str, kind: str) -> TransformContext:
        return TransformContext("gw-cache", tmp, reg.register(tid, "transform", kind), peers)

    size = 65_536 if cached else 0
    geo = EnrichGeo(
        "geo",
        EnrichGeoConfig(
            city_db_path=str(files["city"]),
            asn_db_path=str(files["asn"]),
            anonymous_ip_db_path=str(files["anon"]),
            cache_max_entries=size,
        ),
        ctx("geo", "enrich_geo"),
    )
    who = EnrichIdentity(
        "who",
        EnrichIdentityConfig(inventory_path=str(tmp / "identities.yaml")),
        ctx("who", "enrich_identity"),
    )
    assets = EnrichAssets(
        "assets",
        EnrichAssetsConfig(
            inventory_path=str(tmp / "assets.csv"), fields=["source", "destination"], cache_max_entries=size
        ),
        ctx("assets", "enrich_assets"),
    )
    risk = ScoreRisk(
        "risk",
        ScoreRiskConfig.model_validate(
            {
                "asset_criticality": {"sides": ["destination", "observer"]},
                "country": {"countries": {"KP": 1.0, "JP": 0.2}},
                "asn": {"asns": {64502: 0.9}, "organizations": {"example hosting gmbh": 0.4}},
            }
        ),
        ctx("risk", "score_risk"),
    )
    return [geo, who, assets, risk]


def stream(n: int, seed: int) -> list[dict[str, Any]]:
    """A mixed stream (see the module docstring); deterministic for a seed."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for j in range(n):
        i = rng.randrange(PEERS + 2)  # two never-configured peers too
        key = key_of(i)
        r = rng.random()
        addr = rng.choice(PUBLIC) if rng.random() < 0.9 else f"203.0.113.{rng.randrange(256)}"
        base: dict[str, Any] = {
            "@timestamp": "2026-11-25T18:00:00.000Z",
            "event": {"kind": "event", "category": ["network"], "type": ["connection"], "action": "flow",
                      "dataset": "wireguard.netflow", "module": "wireguard", "id": f"e{j}"},
            "observer": {"hostname": rng.choice(["gw-cache", "gw-cache", "other-gw"]), "type": "vpn"},
        }  # fmt: skip
        if r < 0.3:
            base["event"].update(action="session-started", dataset="wireguard.state")
            base["source"] = {"ip": addr, "port": 51820, "nat": {"ip": tunnel(i)}}
            base["wireguard"] = {"peer": {"public_key": key}}
        elif r < 0.75:
            dst = rng.choice(["10.20.5.10", "10.20.9.9", "10.30.0.4", "10.40.0.1", "2001:db8:aa::9", addr])
            base["source"] = {"ip": tunnel(i), "port": 40000 + j}
            base["destination"] = {"ip": dst, "port": 443}
            if rng.random() < 0.5:
                base["wireguard"] = {"peer": {"public_key": key}}
            if rng.random() < 0.2:
                base["user"] = {"name": "from-idp", "risk": {"calculated_score": rng.choice([10, 70, 95])}}
        elif r < 0.85:
            base["source"] = {"ip": rng.choice(BAD)}
            base["destination"] = {"ip": rng.choice([12345, None, "10.20.5.10"])}
        else:
            base["wireguard"] = {"interface": {"name": "wg0"}}
            if rng.random() < 0.5:
                base["observer"]["ip"] = [rng.choice(["10.20.0.1", "10.30.0.1"])]
                del base["observer"]["hostname"]
        out.append(base)
    return out


def run(transforms: list[Any], docs: list[dict[str, Any]], *, clear: bool) -> list[bytes]:
    out = []
    for doc in docs:
        env: Envelope | None = Envelope(copy.deepcopy(doc), EventMeta("test", 0))
        for t in transforms:
            if clear:
                getattr(t, "clear_cache", lambda: None)()
            assert env is not None
            env = t(env)
        assert env is not None
        out.append(orjson.dumps(env.data))
    return out


def close(transforms: list[Any]) -> None:
    for t in transforms:
        getattr(t, "close", lambda: None)()


def test_cached_and_uncached_chains_give_the_same_documents(tmp_path: Path) -> None:
    peers = directory()
    fast = chain(tmp_path, peers, cached=True)
    slow = chain(tmp_path, peers, cached=False)
    try:
        docs = stream(1_500, seed=1)
        got = run(fast, docs, clear=False)
        want = run(slow, docs, clear=True)
        assert got == want
        stats = {f"{t.__name__}.{k}": v for t in fast for k, v in t.cache_stats().items()}
        # the stream repeats addresses and peers: every cache was used, and mostly hit
        for name in ("enrich_geo.addresses", "enrich_identity.peers", "enrich_assets.addresses"):
            assert stats[name]["hit_rate"] > 0.5, (name, stats[name])
        assert stats["score_risk.results"]["hits"] > 0
        for raw in got[:200]:
            validate(orjson.loads(raw))
    finally:
        close(fast)
        close(slow)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60))
def test_any_mixed_stream_is_the_same_with_and_without_caches(
    tmp_path_factory: Any, seed: int, n: int
) -> None:
    tmp = tmp_path_factory.mktemp("cache")
    peers = directory()
    fast = chain(tmp, peers, cached=True)
    slow = chain(tmp, peers, cached=False)
    try:
        docs = stream(n, seed)
        assert run(fast, docs + docs, clear=False) == run(slow, docs + docs, clear=True)
    finally:
        close(fast)
        close(slow)


def _walk(node: Any) -> list[Any]:
    """Every dict and list inside ``node``."""
    out, stack = [], [node]
    while stack:
        x = stack.pop()
        if type(x) in (dict, list):
            out.append(x)
            stack.extend(x.values() if type(x) is dict else x)
    return out


def test_an_event_edited_after_enrichment_leaves_the_next_one_alone(tmp_path: Path) -> None:
    peers = directory()
    transforms = chain(tmp_path, peers, cached=True)
    try:
        doc = {
            "event": {"kind": "event", "action": "flow", "id": "a"},
            "observer": {"hostname": "gw-cache"},
            "source": {"ip": "192.0.2.7", "nat": {"ip": tunnel(0)}},
            "destination": {"ip": "10.20.5.10"},
            "wireguard": {"peer": {"public_key": key_of(0)}},
        }
        first = run(transforms, [doc], clear=False)[0]
        env: Envelope | None = Envelope(copy.deepcopy(doc), EventMeta("test", 0))
        for t in transforms:
            assert env is not None
            env = t(env)
        assert env is not None
        assert orjson.dumps(env.data) == first
        # vandalize every object and list of the event, as an in-place privacy pass might
        for x in _walk(env.data):
            if type(x) is dict:
                for k in list(x):
                    if type(x[k]) not in (dict, list):
                        x[k] = "X"
                x["added"] = 1
            else:
                x.append("X")
        assert run(transforms, [doc], clear=False)[0] == first
    finally:
        close(transforms)


def _enrich(transforms: list[Any], doc: dict[str, Any]) -> dict[str, Any]:
    return orjson.loads(run(transforms, [doc], clear=False)[0])  # type: ignore[no-any-return]


FLOW = {
    "event": {"kind": "event", "action": "flow", "id": "b"},
    "observer": {"hostname": "gw-cache"},
    "source": {"ip": tunnel(1)},
    "destination": {"ip": "10.20.5.10"},
}


def test_an_asset_inventory_edit_takes_effect_for_a_cached_address(tmp_path: Path) -> None:
    transforms = chain(tmp_path, directory(), cached=True)
    assets = transforms[2]
    try:
        before = _enrich(transforms, FLOW)
        assert before["wireguard"]["asset"]["destination"]["name"] == "hr-db"
        path = tmp_path / "assets.csv"
        path.write_text(
            path.read_text().replace("hr-db,dba@corp.example,HR,5", "payroll-db,dba@corp.example,HR,2")
        )
        assets.check_now()
        after = _enrich(transforms, FLOW)
        dst = after["wireguard"]["asset"]["destination"]
        assert (dst["name"], dst["criticality"]) == ("payroll-db", 2)
        # risk follows: the cached score of the old evidence is not reused
        assert after["event"]["risk_score"] < before["event"]["risk_score"]
        assert "payroll-db" in orjson.dumps(after["wireguard"]["risk"]).decode()
    finally:
        close(transforms)


def test_an_identity_inventory_edit_takes_effect_for_a_cached_peer(tmp_path: Path) -> None:
    transforms = chain(tmp_path, directory(), cached=True)
    who = transforms[1]
    try:
        assert _enrich(transforms, FLOW)["user"]["name"] == "user1"
        path = tmp_path / "identities.yaml"
        path.write_text(path.read_text().replace("name: user1,", "name: renamed1,"))
        who.check_now()
        assert _enrich(transforms, FLOW)["user"]["name"] == "renamed1"
    finally:
        close(transforms)


def test_a_new_peer_directory_moves_a_cached_tunnel_address(tmp_path: Path) -> None:
    peers = directory()
    transforms = chain(tmp_path, peers, cached=True)
    try:
        assert _enrich(transforms, FLOW)["wireguard"]["peer"]["public_key"] == key_of(1)
        infos = [PeerInfo("wg0", key_of(2), None, (f"{tunnel(1)}/32",), None, 0.0)]
        peers.publish("wg0", infos, at=1.0)
        assert _enrich(transforms, FLOW)["wireguard"]["peer"]["public_key"] == key_of(2)
    finally:
        close(transforms)


def test_a_swapped_database_takes_effect_for_a_cached_address(tmp_path: Path) -> None:
    transforms = chain(tmp_path, directory(), cached=True)
    geo = transforms[0]
    doc = {"event": {"kind": "event", "id": "c"}, "source": {"ip": "203.0.113.77"}}
    try:
        assert _enrich(transforms, doc)["source"]["as"]["number"] == 64500
        write_asn(tmp_path / "asn.mmdb", {"203.0.113.0/24": (64999, "Moved Networks")})
        geo.check_now()
        got = _enrich(transforms, doc)["source"]["as"]
        assert got == {"number": 64999, "organization": {"name": "Moved Networks"}}
    finally:
        close(transforms)


# ---------------------------------------------------------------- the scope fast path
def _boundaries() -> list[int]:
    out = []
    for net in scope._ipv4_networks():
        lo, hi = int(net.network_address), int(net.broadcast_address)
        for block in (lo >> 16, hi >> 16):
            out += [block << 16, (block << 16) - 1, ((block + 1) << 16) - 1, (block + 1) << 16]
        out += [lo - 1, lo, hi, hi + 1]
    return [x for x in out if 0 <= x < 2**32]


def test_the_fast_ipv4_scope_matches_the_ipaddress_properties_at_every_boundary() -> None:
    assert scope._PLAIN_V4 is not None  # CPython exposes its constants: the fast path is on
    for value in _boundaries():
        addr = ipaddress.IPv4Address(value)
        assert scope.address_scope(addr) == scope._address_scope(addr), addr


@settings(max_examples=2_000, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_the_fast_ipv4_scope_matches_the_ipaddress_properties(value: int) -> None:
    addr = ipaddress.IPv4Address(value)
    assert scope.address_scope(addr) == scope._address_scope(addr)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("81.2.69.160", "global"), ("8.8.8.8", "global"), ("100.64.0.1", "shared"), ("192.0.0.1", "reserved")],
)
def test_scope_of_well_known_addresses(text: str, expected: str) -> None:
    assert scope.address_scope(scope.parse_ip(text)) == expected

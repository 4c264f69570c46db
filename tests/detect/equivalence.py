"""A fixed, mixed event stream and the alerts the engine raises on it — the golden file that proves an
optimization of the engine changed no verdict.

The stream is seeded and self-contained (it does not depend on the simulator, which evolves): a
population of peers over ten days of event time in the shapes of the real fixtures and the enrichers'
fields (``transfer``, ``handshake`` with geo, netflow ``flow`` with assets, invalid handshakes,
``session-started``, ``endpoint-changed``, MFA context), with injected behaviour every detector and
correlation reacts to (a traffic burst, impossible travel and a new AS, a scan and an admin port on a
sensitive asset, a key alternating between continents, a handshake flood, cookie replies, a peer added
live and used, a dormant peer, night sessions, an EDR alert), and then every rule's own sample
sequences, each shifted to its own later day.

``alerts(engine_factory)`` runs it through one engine with every built-in rule (detector options from
the rules' ``samples.options`` so the learning periods fit ten days) and returns the alerts without
``event.created`` (the wall clock). Regenerate the golden file — only when a rule or detector change
*meant* to change verdicts — with ``.venv/bin/python -m tests.detect.equivalence --write``.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from wgsiem.detect import BUILTIN_RULES, DetectConfig, DetectionEngine, DetectionRule, load_rules
from wgsiem.enrich.base import TransformContext
from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.peer_directory import PeerDirectory

GOLDEN = Path(__file__).with_name("equivalence_alerts.json")
CLOCK = 1_764_000_000.0
T0 = dt.datetime(2026, 11, 2, 0, tzinfo=dt.UTC).timestamp()
DAY = 86400.0
# (country, WKT location, AS number)
PLACES = [
    ("DE", "POINT (13.4 52.52)", 3320),
    ("NL", "POINT (4.89 52.37)", 1136),
    ("FR", "POINT (2.35 48.85)", 3215),
]
FAR = ("AU", "POINT (151.21 -33.87)", 1221)


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _obs() -> dict[str, Any]:
    return {"hostname": "vpn-gw-1", "type": "vpn", "ingress": {"interface": {"name": "wg0"}}}


class _Stream:
    def __init__(self, peers: int, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.keys = [base64.b64encode(self.rnd.randbytes(32)).decode() for _ in range(peers)]
        self.home = [self.rnd.randrange(len(PLACES)) for _ in range(peers)]
        self.n = 0
        self.out: list[tuple[float, dict[str, Any]]] = []

    def emit(self, t: float, action: str, dataset: str, **fields: Any) -> None:
        self.n += 1
        doc: dict[str, Any] = {
            "@timestamp": iso(t),
            "event": {"id": f"eq{self.n:08d}", "kind": "event", "action": action, "dataset": dataset},
            "observer": _obs(),
        }
        outcome = fields.pop("outcome", None)
        if outcome is not None:
            doc["event"]["outcome"] = outcome
        doc.update(fields)
        self.out.append((t, doc))

    def peer(
        self, p: int, *, place: tuple[str, str, int] | None = None, ip: str | None = None
    ) -> dict[str, Any]:
        cc, loc, asn = place or PLACES[self.home[p]]
        return {
            "user": {"name": f"user{p}"},
            "source": {
                "ip": ip or f"203.0.113.{p % 250 + 1}",
                "geo": {"country_iso_code": cc, "location": loc},
                "as": {"number": asn},
            },
            "wireguard": {
                "peer": {"public_key": self.keys[p]},
                "interface": {"name": "wg0"},
                "asset": {"observer": {"name": "vpn-gw-1", "environment": "production", "criticality": 5}},
            },
        }

    def transfer(self, t: float, p: int, nbytes: int) -> None:
        self.emit(
            t,
            "transfer",
            "wireguard.state",
            network={"bytes": nbytes},
            user={"name": f"user{p}"},
            wireguard={"peer": {"public_key": self.keys[p]}, "interface": {"name": "wg0"}},
        )

    def flow(
        self, t: float, p: int, dst: str, port: int, criticality: int = 3, name: str | None = None
    ) -> None:
        asset: dict[str, Any] = {"criticality": criticality}
        if name:
            asset["name"] = name
        self.emit(
            t,
            "flow",
            "wireguard.flow",
            source={"ip": f"10.1.0.{p % 250}", "port": 40000},
            destination={"ip": dst, "port": port},
            wireguard={
                "peer": {"public_key": self.keys[p], "side": "source"},
                "asset": {"destination": asset},
            },
        )


def _background(s: _Stream, days: float, step: float) -> None:
    rnd = s.rnd
    peers = len(s.keys)
    t = T0
    end = T0 + days * DAY
    while t < end:
        t += step * (0.5 + rnd.random())
        hour = dt.datetime.fromtimestamp(t, dt.UTC).hour
        p = rnd.randrange(8, peers)  # peers 0..7 are the injected ones
        r = rnd.random()
        if not 7 <= hour < 19 and r < 0.8:
            s.transfer(t, p, rnd.randint(1_000, 5_000))  # quiet nights: keep-alives only
            continue
        if r < 0.45:
            s.transfer(t, p, rnd.randint(100_000, 2_000_000))
        elif r < 0.65:
            s.emit(t, "handshake", "wireguard.state", **s.peer(p))
        elif r < 0.85:
            s.flow(
                t, p, f"10.10.0.{rnd.randrange(6)}", rnd.choice([443, 443, 80]), name=f"app{rnd.randrange(6)}"
            )
        elif r < 0.90 and t < T0 + 2 * DAY:  # a few days of scanner noise (keeps the golden file small)
            s.emit(
                t,
                "invalid-handshake",
                "wireguard.kernel_log",
                source={"ip": f"198.51.100.{rnd.randrange(2)}", "port": 40000},
                wireguard={"interface": {"name": "wg0"}},
            )
        elif r < 0.95:
            s.emit(t, "session-started", "wireguard.state", **s.peer(p))
        elif r < 0.98:
            s.emit(
                t, "endpoint-changed", "wireguard.state", **s.peer(p, ip=f"203.0.113.{rnd.randrange(200)}")
            )
        else:
            s.emit(
                t,
                "identity-mfa",
                "wireguard.context",
                outcome=rnd.choice(["success", "success", "failure"]),
                user={"name": f"user{p}"},
                source={"geo": {"country_iso_code": PLACES[s.home[p]][0]}},
            )


def _injected(s: _Stream) -> None:
    """Peers 0..7 behave normally for a week, then misbehave once each."""
    rnd = s.rnd
    for day in range(10):
        for p in range(8):
            for k in range(6):
                t = T0 + day * DAY + 9 * 3600 + k * 1200 + p * 7
                s.emit(t, "handshake", "wireguard.state", **s.peer(p))
                s.transfer(t + 1, p, 400_000 + rnd.randrange(50_000))
                s.flow(t + 2, p, "10.10.0.1", 443, name="app1")
                if k == 0 and p != 7:
                    s.emit(t + 3, "session-started", "wireguard.state", **s.peer(p))
    late = T0 + 8 * DAY + 14 * 3600
    # 0: traffic burst (well above the learned 5-minute sums and the minimum volume)
    for k in range(5):
        s.transfer(late + k * 20, 0, 30_000_000)
    # 1: impossible travel to another continent, new country and AS
    s.emit(late + 60, "handshake", "wireguard.state", **s.peer(1, place=FAR, ip="192.0.2.10"))
    # 2: scan of many hosts, then an admin port on a sensitive asset
    for k in range(25):
        s.flow(late + 100 + k, 2, f"10.20.0.{k + 1}", 445)
    s.flow(late + 200, 2, "10.30.0.5", 22, criticality=5, name="db-primary")
    # 3: the key alternating between continents within minutes
    for k in range(6):
        place, ip = (FAR, f"192.0.2.{20 + k}") if k % 2 else (PLACES[s.home[3]], f"203.0.113.{30 + k}")
        s.emit(late + 300 + k * 60, "endpoint-changed", "wireguard.state", **s.peer(3, place=place, ip=ip))
    # 4: a session at 03:00 (usual hours), then an EDR alert for the same user (escalation)
    night = T0 + 9 * DAY + 3 * 3600
    s.emit(night, "session-started", "wireguard.state", **s.peer(4))
    s.emit(
        night + 120,
        "edr-alert",
        "wireguard.context",
        user={"name": "user4"},
        host={"name": "laptop-4"},
        rule={"name": "Credential dumping"},
    )
    # 5: handshake flood and cookie replies from one address
    for k in range(15):
        s.emit(
            late + 400 + k * 2,
            "invalid-mac",
            "wireguard.wggo_log",
            source={"ip": "198.51.100.200", "port": 50000 + k},
            wireguard={"interface": {"name": "wg0"}},
        )
        s.emit(
            late + 401 + k * 2, "cookie-sent", "wireguard.wggo_log", wireguard={"interface": {"name": "wg0"}}
        )
    # 6: a peer added live and used minutes later
    added = s.peer(6)
    added["wireguard"]["peer"]["initial_sync"] = False
    s.emit(late + 600, "peer-added", "wireguard.state", **added)
    s.emit(late + 900, "handshake", "wireguard.state", **s.peer(6))
    # 7: dormant for days (no session-started above), active again
    s.emit(late + 1000, "handshake", "wireguard.state", **s.peer(7, place=PLACES[s.home[7]]))


def _samples(rules: list[DetectionRule], start: float) -> Iterator[tuple[float, dict[str, Any]]]:
    """Every rule's sample sequences, each shifted to a day of its own after ``start``."""
    k = 0
    for rule in rules:
        for kind, seq in (("m", rule.samples_match), ("n", rule.samples_no_match)):
            docs = list(seq)
            times = [
                dt.datetime.fromisoformat(d["@timestamp"].replace("Z", "+00:00")).timestamp() for d in docs
            ]
            shift = start + k * DAY - min(times)
            k += 1
            for i, (doc, t) in enumerate(zip(docs, times, strict=True)):
                doc = copy.deepcopy(doc)
                doc["@timestamp"] = iso(t + shift)
                if isinstance(doc.get("event"), dict) and "id" in doc["event"]:
                    doc["event"]["id"] = f"s{k:03d}{kind}{i:03d}-{doc['event']['id']}"
                yield t + shift, doc


def stream(rules: list[DetectionRule]) -> list[dict[str, Any]]:
    s = _Stream(peers=60, seed=5)
    _background(s, days=10, step=75)
    _injected(s)
    s.out.sort(key=lambda item: item[0])  # stable: same-time events keep their order
    docs = [d for _, d in s.out]
    docs.extend(d for _, d in _samples(rules, T0 + 12 * DAY))
    return docs


def options(rules: list[DetectionRule]) -> dict[str, dict[str, Any]]:
    opts = {r.name: dict(r.sample_options or {}) for r in rules if r.kind == "detector"}
    opts["wireguard_traffic_spike"] = {"min_bytes": 20_000_000, "min_samples": 3}
    opts["wireguard_dormant_peer_active"] = {"dormant_days": 5}
    opts["wireguard_unusual_hours"] = {"learning_days": 5, "min_sessions": 5}
    opts["wireguard_unexpected_geography"] = {"learning_days": 5}
    opts["wireguard_lateral_movement"] = {"learning_days": 5}
    return opts


def engine(tmp: Path, rules: list[DetectionRule]) -> DetectionEngine:
    tel = TelemetryRegistry().register("detect", "transform", "detect")
    ctx = TransformContext("gw-eq", tmp, tel, PeerDirectory())
    config = DetectConfig(lifecycle=False, state=False, detector_options=options(rules))
    return DetectionEngine("detect", config, ctx, rules=rules, clock=lambda: CLOCK)


def alerts(make: Callable[[], DetectionEngine], docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    eng = make()
    out: list[dict[str, Any]] = []
    for i, doc in enumerate(docs):
        env = Envelope(doc, EventMeta("eq", 0))
        assert eng(env) is env
        if i % 97 == 0:
            out.extend(e.data for e in eng.drain_alerts())
    out.extend(e.data for e in eng.drain_alerts())
    for a in out:
        a["event"].pop("created", None)
    return out


def summary(alert: dict[str, Any]) -> list[Any]:
    """What a reviewer reads in the golden file: rule, time, entity, level, evidence."""
    wa = alert["wireguard"]["alert"]
    return [
        wa["rule_name"],
        alert["@timestamp"],
        wa["entity"]["field"],
        wa["entity"]["value"][:12],
        wa["level"],
        alert["event"]["id"][:16],
        wa["evidence_ids"],
        wa["suppressed_count"],
    ]


def digest(docs: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(docs, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def golden(tmp: Path) -> dict[str, Any]:
    rules = load_rules([BUILTIN_RULES])
    docs = stream(rules)
    got = alerts(lambda: engine(tmp, rules), docs)
    return {
        "events": len(docs),
        "events_sha256": digest(docs),
        "alerts_sha256": digest(got),
        "alerts": [summary(a) for a in got],
    }


def main() -> None:
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--write", action="store_true", help=f"(re)write {GOLDEN}")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = golden(Path(tmp))
    rows = ",\n".join(json.dumps(a, separators=(",", ":")) for a in data["alerts"])
    head = json.dumps({k: v for k, v in data.items() if k != "alerts"}, indent=1)
    text = f'{head[:-2]},\n "alerts": [\n{rows}\n ]\n}}\n'
    json.loads(text)
    if args.write:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text)
    counts: dict[str, int] = {}
    for a in data["alerts"]:
        counts[a[0]] = counts.get(a[0], 0) + 1
    print(data["events"], "events,", len(data["alerts"]), "alerts", json.dumps(counts, indent=1))


if __name__ == "__main__":
    main()

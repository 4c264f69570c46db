"""The simulation loop: a timeline of per-peer operations, played tick by tick into captures.

Everything is planned first (benign sessions, roaming, trips, provisioning, attacks — each an operation
at an exact time on a peer), then one pass over the poll ticks applies the operations that fell in each
tick, advances the counters and handshakes of the *active* peers only, and writes the tick's capture
(a keyframe every ``keyframe_secs``, else a delta of the dirty peers). Logs, context and flows are
collected with their times and written sorted at the end. One ``random.Random(seed)`` drives it all,
so a seed gives the same directory byte for byte.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .attacks import INJECTORS, Label
from .population import DAY, HOUR, Peer, Population
from .spec import ATTACK_CLASSES, SimulationSpec
from .world import World
from .writers import CaptureOut, FlowOut, context_line, iso, peer_line, write_config, write_lines

__all__ = ["SimulationResult", "Timeline", "simulate"]

GATEWAY_KEY = "Z2F0ZXdheS1wdWJsaWMta2V5LXNpbXVsYXRlZC0wMDA="
HANDSHAKE_SECS = 120
SCANNER_RETRY_SHARE = 1 / 3
"""Share of internet scanners that send their probe twice (a retransmission seconds later)."""


def _ep(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(slots=True)
class SimulationResult:
    directory: Path
    peers: int
    days: float
    labels: int
    attacks: dict[str, int]
    capture_files: int
    capture_bytes: int
    kernel_lines: int
    context_records: int
    flows: int
    config_versions: int
    seconds: float
    shortfall: dict[str, int] = field(default_factory=dict)


class Timeline:
    """Operations per peer and the side channels (kernel log, context, flows) of one simulation."""

    def __init__(self, spec: SimulationSpec, rng: random.Random) -> None:
        self.spec = spec
        self.rng = rng
        self.world = World()
        self.pop = Population(self.world, spec.peers, spec.start_epoch, spec.end_epoch, rng)
        self.attack_from = spec.start_epoch + spec.learning_days * DAY
        self.ops: dict[int, list[tuple[float, int, str, Any]]] = defaultdict(list)
        self.segments: dict[int, list[tuple[float, str, int]]] = defaultdict(list)  # endpoint changes
        self.kernel_rows: list[tuple[float, str]] = []
        self.context_rows: list[tuple[float, str]] = []
        self.flows = FlowOut(boot=spec.start_epoch - 3600)
        self.labels: list[Label] = []
        self.label_seq = 0
        self.claimed: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.attack_countries: dict[str, set[str]] = defaultdict(set)  # peer key → countries attacks used
        self.extra_peers: list[Peer] = []  # rogue peers
        self.rogue_allowed: dict[int, str] = {}
        self.configs: list[float] = []

    # ------------------------------------------------------------------ planning helpers
    def tick_of(self, t: float) -> int:
        return max(0, math.ceil((t - self.spec.start_epoch) / self.spec.poll_interval_secs))

    def op(self, t: float, p: Peer, kind: str, arg: Any = None) -> None:
        if self.spec.start_epoch <= t <= self.spec.end_epoch:
            self.ops[self.tick_of(t)].append((t, p.idx, kind, arg))

    def claim(self, p: Peer, a: float, b: float) -> None:
        self.claimed[p.key].append((a, b))

    def unclaimed(self, p: Peer, a: float, b: float) -> bool:
        return all(e < a or s > b for s, e in self.claimed.get(p.key, ()))

    def in_change_window(self, t: float) -> bool:
        d = dt.datetime.fromtimestamp(t, dt.UTC)
        return d.weekday() < 5 and 10 <= d.hour < 12

    def endpoint_at(self, p: Peer, t: float) -> tuple[str, int]:
        best = (p.home_ip, 51820)
        for at, ip, port in self.segments.get(p.idx, ()):
            if at <= t:
                best = (ip, port)
            else:
                break
        return best

    def endpoint_ip(self, p: Peer, t: float) -> str:
        return self.endpoint_at(p, t)[0]

    def endpoint_text(self, p: Peer, t: float) -> str:
        return _ep(*self.endpoint_at(p, t))

    def set_endpoint(self, p: Peer, t: float, ip: str, port: int) -> None:
        seg = self.segments[p.idx]
        seg.append((t, ip, port))
        if len(seg) > 1 and seg[-2][0] > t:
            seg.sort(key=lambda s: s[0])
        self.op(t, p, "ep", _ep(ip, port))

    def attack_session(self, p: Peer, a: float, b: float, ip: str) -> None:
        port = self.rng.randrange(1024, 65535)
        self.segments[p.idx].append((a, ip, port))
        self.segments[p.idx].sort(key=lambda s: s[0])
        self.op(a, p, "start", _ep(ip, port))
        self.op(b, p, "end")

    def move(self, p: Peer, t: float, ip: str | None) -> None:
        """The key shows up at ``ip`` (or back at the legitimate endpoint when ``ip`` is None)."""
        if ip is None:
            legit = [s for s in self.segments[p.idx] if s[0] <= t]
            ip2, port = (legit[-1][1], legit[-1][2]) if legit else (p.home_ip, 51820)
            self.op(t, p, "ep", _ep(ip2, port))
        else:
            self.op(t, p, "ep", _ep(ip, self.rng.randrange(1024, 65535)))

    def extra(self, p: Peer, a: float, b: float, rate: float) -> None:
        self.op(a, p, "extra", rate)
        self.op(b, p, "extra", 0.0)

    def kernel(self, t: float, message: str) -> None:
        self.kernel_rows.append(
            (t, f"{iso(t)} {self.spec.hostname} kernel: wireguard: {self.spec.interface}: {message}")
        )

    def context(self, t: float, record: dict[str, Any]) -> None:
        self.context_rows.append((t, context_line(record)))

    def mfa(self, t: float, user: str, ip: str, result: str) -> None:
        self.context(
            t,
            {
                "kind": "identity",
                "time": iso(t),
                "provider": "okta",
                "user": user,
                "action": "mfa",
                "result": result,
                "factor": "push",
                "source_ip": ip,
                "id": f"sim-mfa-{len(self.context_rows)}",
            },
        )

    def rogue(self, t: float, key: str, allowed: str, ip: str) -> None:
        p = Peer(
            idx=100_000 + len(self.extra_peers),
            key=key,
            user="",
            device="",
            kind="rogue",
            home=self.pop.peers[0].home,
            network=self.pop.peers[0].network,
            home_ip=ip,
            tunnel_ip=allowed.split("/")[0],
            rate_rx=2_000.0,
            rate_tx=50_000.0,
            keepalive=25,
        )
        self.extra_peers.append(p)
        self.rogue_allowed[p.idx] = allowed
        self.op(t, p, "add", allowed)
        self.attack_session(p, t + self.rng.uniform(60, 300), t + 1800, ip)

    def widen(self, p: Peer, t: float, extra: str) -> None:
        self.op(t, p, "allowed", f"{p.tunnel_ip}/32,{extra}")

    # ------------------------------------------------------------------ benign plan
    def plan_benign(self) -> None:
        rng, spec = self.rng, self.spec
        days = int(spec.days)
        # trips: ~3 % of office users
        for p in self.pop.peers:
            if p.kind == "office" and days >= 3 and rng.random() < 0.03:
                trip = self.pop.plan_trip(p, rng.randrange(0, max(1, days - 2)))
                if trip is not None:
                    self.labels.append(
                        {
                            "id": f"benign_travel-{p.idx:05d}",
                            "class": "benign_travel",
                            "benign": True,
                            "start": round(trip.arrive, 3),
                            "end": round(trip.back, 3),
                            "entity": {"peer_key": p.key, "user": p.user},
                            "detail": {"country": trip.country.code},
                        }
                    )
        # provisioning inside approved change windows, with a ticket
        per_day = max(1, spec.peers // 500)
        for d in range(days):
            day = spec.start_epoch + d * DAY
            if dt.datetime.fromtimestamp(day, dt.UTC).weekday() >= 5:
                continue
            for _ in range(per_day):
                t = day + rng.uniform(10.1, 11.8) * HOUR
                p = self.pop.add(t)
                tick_t = spec.start_epoch + self.tick_of(t) * spec.poll_interval_secs
                self.op(t, p, "add", f"{p.tunnel_ip}/32")
                # `wg set` then `wg-quick save`: the file follows the running state by seconds. (Written
                # the other way round, file first, config_watch's replay reports the few seconds of
                # drift: its drift grace is not applied between replayed snapshots.)
                self.configs.append(tick_t + 5)
                ticket = f"CHG{1000000 + p.idx}"
                self.context(
                    t - DAY / 2,
                    {
                        "kind": "change",
                        "id": ticket,
                        "time": iso(t - DAY / 2),
                        "window_start": iso(day + 10 * HOUR),
                        "window_end": iso(day + 12 * HOUR),
                        "approval": "approved",
                        "requester": "netops",
                        "hosts": [spec.hostname],
                        "peers": [p.key],
                        "title": f"Provision WireGuard peer for {p.user}",
                        "provider": "servicenow",
                    },
                )
                self.labels.append(
                    {
                        "id": f"provisioning-{p.idx:05d}",
                        "class": "provisioning",
                        "benign": True,
                        "start": round(t, 3),
                        "end": round(t + HOUR, 3),
                        "entity": {"peer_key": p.key, "user": p.user},
                        "detail": {"ticket": ticket},
                    }
                )
        for p in self.pop.peers:
            if p.kind == "server":
                self.labels.append(
                    {
                        "id": f"backup-{p.idx:05d}",
                        "class": "backup",
                        "benign": True,
                        "start": spec.start_epoch,
                        "end": spec.end_epoch,
                        "entity": {"peer_key": p.key, "user": p.user},
                        "detail": {"nightly_local_hour": 2},
                    }
                )
        # internet scanners at any time: a probe that reaches the handshake check, and for a third of
        # them the scanner's retransmission seconds later (zmap --probes 2, masscan --retries 1)
        for d in range(max(1, days)):
            for _ in range(5 + spec.peers // 500):
                t = spec.start_epoch + d * DAY + rng.uniform(0, DAY)
                c = rng.choice(self.world.countries("travel") + self.world.countries("home"))
                ip = self.world.network(c.code, "hosting").address(rng)
                ep = f"[{ip}]" if ":" in ip else ip
                port = rng.randrange(1024, 65535)
                probes = [t] if rng.random() >= SCANNER_RETRY_SHARE else [t, t + rng.uniform(1, 10)]
                for at in probes:
                    self.kernel(at, f"Invalid handshake initiation from {ep}:{port}")
                self.labels.append(
                    {
                        "id": f"scanner-{len(self.labels):05d}",
                        "class": "scanner",
                        "benign": True,
                        "start": round(t, 3),
                        "end": round(probes[-1] + 1, 3),
                        "entity": {"source_ip": ip},
                        "detail": {"probes": len(probes)},
                    }
                )
            for _ in range(max(1, spec.peers // 100)):  # unrelated EDR noise
                p = rng.choice(self.pop.peers)
                t = spec.start_epoch + d * DAY + rng.uniform(0, DAY)
                self.context(
                    t,
                    {
                        "kind": "edr",
                        "time": iso(t),
                        "vendor": "Wazuh",
                        "host": p.device,
                        "user": p.user,
                        "severity": rng.choice(["low", "medium"]),
                        "rule": "Unsigned binary executed",
                        "rule_id": "100200",
                        "id": f"sim-edr-noise-{len(self.context_rows)}",
                    },
                )

    def plan_sessions(self) -> None:
        rng = self.rng
        for p in self.pop.peers:
            port = rng.randrange(1024, 65535)
            for s, e in p.sessions:
                trip = p.trip
                if trip is not None and trip.arrive <= s <= trip.back:
                    ip = trip.network.address(rng)
                elif p.kind == "mobile":
                    ip = p.network.address(rng)
                    port = rng.randrange(1024, 65535)
                else:
                    ip = p.home_ip
                    if rng.random() < 0.3:  # NAT rebinding
                        port = rng.randrange(1024, 65535)
                self.segments[p.idx].append((s, ip, port))
                self.op(s, p, "start", _ep(ip, port))
                self.op(e, p, "end")
                if p.kind != "server" and rng.random() < 0.3:
                    self.mfa(s - rng.uniform(30, 180), p.user, ip, "success")
                if p.kind == "mobile":
                    t = s + rng.uniform(20, 60) * 60
                    while t < e:
                        ip = p.network.address(rng)
                        port = rng.randrange(1024, 65535)
                        self.segments[p.idx].append((t, ip, port))
                        self.op(t, p, "ep", _ep(ip, port))
                        t += rng.uniform(20, 60) * 60
                if p.kind == "server":  # nightly backup at 02:00 local, 30 minutes, ~5 GB
                    day = self.spec.start_epoch - p.offset
                    while day < e:
                        b = day + 2 * HOUR
                        if s <= b <= e - 1800:
                            self.extra(p, b, b + 1800, 3e6 * (0.9 + 0.2 * rng.random()))
                            self.flows.add(
                                b + 1800,
                                p.tunnel_ip,
                                "10.20.9.10",
                                rng.randrange(32768, 61000),
                                873,
                                6,
                                3_000_000,
                                3_900_000_000,
                            )
                        day += DAY
            self.segments[p.idx].sort(key=lambda x: x[0])

    def plan_attacks(self, classes: list[str]) -> dict[str, int]:
        """Inject ``classes``; returns how many of each could not be placed."""
        shortfall: dict[str, int] = {}
        victims = [p for p in self.pop.peers if p.kind != "server" and p.provisioned_at is None]
        self.rng.shuffle(victims)
        cursor = 0
        for cls in classes:
            want = self.spec.attacks[cls]
            got = 0
            tries = 0
            while got < want and tries < want * 20 and victims:
                tries += 1
                p = victims[cursor % len(victims)]
                cursor += 1
                label = INJECTORS[cls](self, p, self.rng)
                if label is not None:
                    self.labels.append(label)
                    got += 1
            if got < want:
                shortfall[cls] = want - got
        return shortfall


def simulate(
    spec: SimulationSpec, out: Path, progress: Callable[[str], None] | None = None
) -> SimulationResult:
    """Write a labelled simulation into ``out`` (see ``docs/detections-evaluation.md`` for the layout)."""
    if spec.attacks and spec.learning_days * DAY > spec.days * DAY - 4 * HOUR:
        from wgsiem.errors import ConfigError

        raise ConfigError(
            f"no time left for attacks: {spec.learning_days:g} learning day(s) in a "
            f"{spec.days:g}-day simulation",
            fix="lower --learning-days or raise --days (attacks need at least 4 hours after learning)",
        )
    started = time.monotonic()
    say = progress or (lambda _m: None)
    rng = random.Random(spec.seed)
    tl = Timeline(spec, rng)
    say(f"planning {spec.peers} peers × {spec.days:g} days, attacks {spec.attacks or 'none'}")
    tl.plan_benign()
    # dormant replaces its victims' schedules, so it goes before the sessions are laid out; the other
    # attacks need the laid-out sessions (the endpoint a victim has at the attack's time)
    shortfall = tl.plan_attacks([c for c in spec.attacks if c == "dormant"])
    tl.plan_sessions()
    shortfall |= tl.plan_attacks([c for c in spec.attacks if c != "dormant"])
    out.mkdir(parents=True, exist_ok=True)
    tele = out / "telemetry"
    iface = spec.interface
    iface_line = f"{iface}\tfp:5151515151515151\t{GATEWAY_KEY}\t51820\toff"
    cap = CaptureOut(tele / "wg_state", iface, iface_line, spec.keyframe_secs)

    peers = {p.idx: p for p in tl.pop.peers + tl.extra_peers}
    present: set[int] = {p.idx for p in tl.pop.peers if p.provisioned_at is None}
    allowed = {i: f"{p.tunnel_ip}/32" for i, p in peers.items()}
    endpoint: dict[int, str | None] = {}
    hs: dict[int, int] = {}
    rx: dict[int, int] = {}
    tx: dict[int, int] = {}
    for i in present:
        p = peers[i]
        endpoint[i] = _ep(*tl.endpoint_at(p, spec.start_epoch)) if p.initial_handshake else None
        hs[i] = p.initial_handshake
        rx[i] = rng.randrange(10**6, 10**10) if p.initial_handshake else 0
        tx[i] = rng.randrange(10**6, 10**10) if p.initial_handshake else 0
    extra: dict[int, float] = defaultdict(float)
    active: set[int] = set()

    def line(i: int) -> str:
        p = peers[i]
        return peer_line(
            iface, p.key, endpoint.get(i), allowed[i], hs.get(i, 0), rx.get(i, 0), tx.get(i, 0), p.keepalive
        )

    for i in sorted(present):
        cap.lines[peers[i].key] = line(i)
    config_peers = [
        (p.user or p.device, p.key, f"{p.tunnel_ip}/32") for p in tl.pop.peers if p.provisioned_at is None
    ]
    write_config(tele / "config", spec.start_epoch + 0.5, iface, config_peers)
    config_versions = 1
    pending_configs = sorted(tl.configs)
    provisioned = sorted((p.provisioned_at or 0, p) for p in tl.pop.peers if p.provisioned_at is not None)

    poll = spec.poll_interval_secs
    ticks = int(spec.days * DAY / poll)
    flow_p = poll / 1800.0
    last_say = time.monotonic()
    for k in range(ticks + 1):
        t = spec.start_epoch + k * poll
        dirty: set[int] = set()
        for at, i, kind, arg in sorted(tl.ops.pop(k, ()), key=lambda o: o[0]):
            if kind == "add":
                present.add(i)
                allowed[i] = arg
                hs.setdefault(i, 0)
            elif i not in present:
                continue
            elif kind == "start":
                active.add(i)
                endpoint[i] = arg
                hs[i] = int(at)
            elif kind == "end":
                active.discard(i)
            elif kind == "ep":
                endpoint[i] = arg
                hs[i] = max(hs.get(i, 0), int(at))
            elif kind == "extra":
                extra[i] = arg
            elif kind == "allowed":
                allowed[i] = arg
            dirty.add(i)
        rand = rng.random
        for i in active:
            p = peers[i]
            # interactive traffic varies ±50 % poll to poll; a bulk transfer (backup, exfiltration) runs
            # near line rate, ±10 %: its bytes are what the plan (and the label) says, not half of it
            bulk = extra[i]
            rx[i] = rx.get(i, 0) + int(
                p.rate_rx * poll * (0.5 + rand()) + (bulk * poll * (0.9 + 0.2 * rand()) if bulk else 0)
            )
            tx[i] = tx.get(i, 0) + int(p.rate_tx * poll * (0.5 + rand()))
            if t - hs.get(i, 0) >= HANDSHAKE_SECS:
                hs[i] = int(t) - int(rand() * min(poll, HANDSHAKE_SECS))
            if spec.flows and p.kind in ("office", "mobile") and rand() < flow_p:
                tl.flows.add(
                    t - rand() * poll,
                    p.tunnel_ip,
                    p.servers[0 if rand() < 0.7 else 1],
                    rng.randrange(32768, 61000),
                    443,
                    6,
                    40,
                    30_000,
                )
        dirty |= active
        for i in dirty:
            cap.lines[peers[i].key] = line(i)
        while pending_configs and pending_configs[0] <= t:
            ct = pending_configs.pop(0)
            done = {p.idx for at, p in provisioned if at <= ct}
            extra_cfg = [(p.user, p.key, f"{p.tunnel_ip}/32") for at, p in provisioned if p.idx in done]
            write_config(tele / "config", ct, iface, config_peers + extra_cfg)
            config_versions += 1
        cap.write(t, {peers[i].key for i in dirty})
        if time.monotonic() - last_say > 2.0:
            say(f"tick {k:,}/{ticks:,} ({100 * k / max(1, ticks):.0f} %), {len(active):,} active peers")
            last_say = time.monotonic()

    kernel_lines = write_lines(tele / "logs" / "kern.log", tl.kernel_rows)
    context_records = write_lines(tele / "context" / "context.ndjson", tl.context_rows)
    flows = tl.flows.write(tele / "flows" / "flows.pcap") if spec.flows else 0
    inputs = out / "inputs"
    city, asn = tl.world.write_geoip(inputs / "geo")
    _write_inventories(inputs, tl, spec)
    tl.labels.sort(key=lambda lb: (lb["start"], lb["id"]))
    with open(out / "labels.ndjson", "w") as fh:
        for lb in tl.labels:
            fh.write(json.dumps(lb, sort_keys=True) + "\n")
    attacks = {c: sum(1 for lb in tl.labels if lb["class"] == c) for c in ATTACK_CLASSES}
    result = SimulationResult(
        directory=out,
        peers=spec.peers,
        days=spec.days,
        labels=len(tl.labels),
        attacks=attacks,
        capture_files=cap.files,
        capture_bytes=cap.bytes,
        kernel_lines=kernel_lines,
        context_records=context_records,
        flows=flows,
        config_versions=config_versions,
        seconds=round(time.monotonic() - started, 2),
        shortfall=shortfall,
    )
    manifest = {
        "format": "wgsiem-simulation/1",
        "spec": {**asdict(spec), "start": spec.start.isoformat()},
        "poll_interval_secs": spec.poll_interval_secs,
        "hostname": spec.hostname,
        "interface": spec.interface,
        "peer_days": spec.peers * spec.days,
        "telemetry": "telemetry",
        "inputs": {
            "city_db": str(city.relative_to(out)),
            "asn_db": str(asn.relative_to(out)),
            "identity": "inputs/identity.csv",
            "assets": "inputs/assets.yaml",
        },
        "result": {k: v for k, v in asdict(result).items() if k != "directory"},
        "attack_classes": {
            c: {"kind": a.kind, "description": a.description, "telemetry": a.telemetry}
            for c, a in ATTACK_CLASSES.items()
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    say(
        f"wrote {cap.files:,} captures ({cap.bytes / 1e6:.1f} MB), {kernel_lines:,} kernel lines, "
        f"{context_records:,} context records, {flows:,} flows, {len(tl.labels):,} labels "
        f"in {result.seconds:.1f}s"
    )
    return result


def _write_inventories(inputs: Path, tl: Timeline, spec: SimulationSpec) -> None:
    inputs.mkdir(parents=True, exist_ok=True)
    with open(inputs / "identity.csv", "w") as fh:
        fh.write("public_key,name,email,id,department,device,risk\n")
        for p in tl.pop.peers:
            fh.write(
                f"{p.key},{p.user},{p.user}@corp.example,emp-{p.idx:05d},"
                f"{'IT' if p.kind == 'server' else 'Sales'},{p.device},low\n"
            )
    (inputs / "assets.yaml").write_text(
        "assets:\n"
        "  - cidr: 10.20.0.0/16\n    name: datacenter\n    owner: infra@corp.example\n    department: IT\n"
        "    criticality: medium\n    environment: production\n    tags: [server]\n"
        "  - cidr: 10.20.5.0/24\n    name: admin-servers\n    owner: infra@corp.example\n    department: IT\n"
        "    criticality: high\n    environment: production\n    tags: [sensitive, admin]\n"
        f"  - hostname: {spec.hostname}\n    name: vpn-gateway\n    owner: netops@corp.example\n"
        "    department: IT\n    criticality: very-high\n    environment: production\n    tags: [vpn, edge]\n"
    )

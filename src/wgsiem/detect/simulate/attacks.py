"""Injected attacks and labelled benign near misses.

Each injector picks a victim and a time after the learning period, schedules what the attack changes
(sessions from another endpoint, extra bytes, log lines, flows, a new peer…) on the
:class:`~wgsiem.detect.simulate.generator.Timeline`, and returns its label: the class, the entity (peer
key, user, endpoint address, host) and the start/end times. Evaluation matches alerts to labels by entity
and time, whichever rule raised them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .population import DAY, HOUR, Peer, make_key
from .world import distance_km

if TYPE_CHECKING:
    from .generator import Timeline

__all__ = ["INJECTORS", "Label"]

Label = dict[str, Any]

MIN_BEFORE_END = 3 * HOUR


def _label(tl: Timeline, cls: str, start: float, end: float, entity: dict[str, str], **detail: Any) -> Label:
    tl.label_seq += 1
    return {
        "id": f"{cls}-{tl.label_seq:05d}",
        "class": cls,
        "benign": False,
        "start": round(start, 3),
        "end": round(end, 3),
        "entity": entity,
        "detail": detail,
    }


def _entity(p: Peer, ip: str | None = None) -> dict[str, str]:
    out = {"peer_key": p.key, "user": p.user, "host": p.device}
    if ip:
        out["source_ip"] = ip
    return out


def _free_time(
    tl: Timeline, p: Peer, length: float, rng: random.Random, *, night: bool = False
) -> float | None:
    for _ in range(60):
        t = rng.uniform(tl.attack_from, tl.spec.end_epoch - MIN_BEFORE_END)
        if night:
            local_midnight = t - ((t + p.offset) % DAY)
            t = local_midnight + rng.uniform(1.5, 4.0) * HOUR
            if (
                t < tl.attack_from
                or t > tl.spec.end_epoch - MIN_BEFORE_END
                or (t - tl.spec.start_epoch) // DAY % 7 >= 5
            ):
                continue
        if tl.pop.free(p, t - 2 * HOUR, t + length + HOUR) and tl.unclaimed(
            p, t - 2 * HOUR, t + length + HOUR
        ):
            return t
    return None


def _busy_time(tl: Timeline, p: Peer, rng: random.Random, need: float) -> float | None:
    sessions = [(s, e) for s, e in p.sessions if s >= tl.attack_from and e - s > need + 40 * 60]
    rng.shuffle(sessions)
    for s, e in sessions:
        t = rng.uniform(s + 20 * 60, e - need - 20 * 60)
        if tl.unclaimed(p, t - HOUR, t + need + HOUR):
            return t
    return None


def _hostile(tl: Timeline, p: Peer, rng: random.Random, far: bool = False) -> tuple[str, str]:
    """A hostile hosting address for an attack on ``p``'s key, from a country no other attack on
    that key uses: a small population reuses victims, and a "never seen" country that an earlier
    attack on the same key already showed would be a wrong label, not a miss."""
    hostile = tl.world.countries("hostile")
    used = tl.attack_countries[p.key]
    options = [c for c in hostile if c.code not in used and (not far or distance_km(p.home, c) > 5000)]
    options = options or [c for c in hostile if c.code not in used] or hostile
    c = rng.choice(options)
    used.add(c.code)
    ip = tl.world.network(c.code, "hosting").address(rng)
    return ip, c.code


def _worked_before(tl: Timeline, p: Peer, t: float) -> bool:
    """``p`` had a working session (≥ 4 h) the gateway saw before ``t``: the user's office hours are
    known. Without one, a night session is not "outside the usual hours" of anything observed."""
    return any(tl.spec.start_epoch <= s and e <= t and e - s >= 4 * HOUR for s, e in p.sessions)


def inject_geo(tl: Timeline, p: Peer, rng: random.Random) -> Label | None:
    length = rng.uniform(20, 50) * 60
    t = _free_time(tl, p, length, rng)
    if t is None:
        return None
    ip, cc = _hostile(tl, p, rng)
    for k in range(rng.randint(1, 3)):  # the attacker fails MFA first (a stolen key, not the password)
        tl.mfa(t - 300 + k * 40, p.user, ip, "failure")
    tl.attack_session(p, t, t + length, ip)
    tl.claim(p, t, t + length)
    return _label(tl, "geo", t, t + length, _entity(p, ip), country=cc)


def inject_travel(tl: Timeline, p: Peer, rng: random.Random) -> Label | None:
    t = _busy_time(tl, p, rng, 30 * 60)
    if t is None:
        return None
    ip, cc = _hostile(tl, p, rng, far=True)
    tl.move(p, t, ip)
    tl.claim(p, t, t + 30 * 60)
    return _label(tl, "travel", t, t + 30 * 60, _entity(p, ip), country=cc)


def inject_key_sharing(tl: Timeline, p: Peer, rng: random.Random) -> Label | None:
    t = _busy_time(tl, p, rng, 30 * 60)
    if t is None:
        return None
    ip, cc = _hostile(tl, p, rng, far=True)
    step = max(tl.spec.poll_interval_secs, 90.0)
    k = 0
    while k * step < 30 * 60:
        tl.move(p, t + k * step, ip if k % 2 == 0 else None)
        k += 1
    tl.claim(p, t, t + 30 * 60)
    return _label(tl, "key_sharing", t, t + 30 * 60, _entity(p, ip), country=cc, switches=k)


def inject_spike(tl: Timeline, p: Peer, rng: random.Random) -> Label | None:
    t = _busy_time(tl, p, rng, 10 * 60)
    if t is None:
        return None
    five_min = (p.rate_rx + p.rate_tx) * 300
    total = max(1e9, 20 * five_min)
    tl.extra(p, t, t + 600, total / 600)
    tl.claim(p, t, t + 600)
    return _label(tl, "spike", t, t + 600, _entity(p, tl.endpoint_ip(p, t)), bytes=int(total))


def inject_lateral(tl: Timeline, p: Peer, rng: random.Random) -> Label | None:
    t = _busy_time(tl, p, rng, 5 * 60)
    if t is None:
        return None
    n = 0
    for host in range(1, 41):
        for port in (22, 3389, 445, 5985):
            if rng.random() < 0.6:
                tl.flows.add(
                    t + rng.uniform(0, 300),
                    p.tunnel_ip,
                    f"10.20.5.{host}",
                    rng.randrange(32768, 61000),
                    port,
                    6,
                    2,
                    120,
                )
                n += 1
    tl.claim(p, t, t + 300)
    return _label(
        tl, "lateral", t, t + 300, {"peer_key": p.key, "user": p.user, "tunnel_ip": p.tunnel_ip}, flows=n
    )


def inject_handshake_flood(tl: Timeline, p: Peer | None, rng: random.Random) -> Label | None:
    t = rng.uniform(tl.attack_from, tl.spec.end_epoch - MIN_BEFORE_END)
    c = rng.choice(tl.world.countries("hostile"))
    ip = tl.world.network(c.code, "hosting").address(rng)
    ep = f"[{ip}]" if ":" in ip else ip
    n = rng.randint(300, 600)
    for _ in range(n):
        at = t + rng.uniform(0, 300)
        what = (
            "Invalid handshake initiation from"
            if rng.random() < 0.8
            else "Invalid MAC of handshake, dropping packet from"
        )
        tl.kernel(at, f"{what} {ep}:{rng.randrange(1024, 65535)}")
    return _label(tl, "handshake_flood", t, t + 300, {"source_ip": ip}, lines=n, country=c.code)


def inject_spoofing(tl: Timeline, p: Peer, rng: random.Random) -> Label | None:
    t = _busy_time(tl, p, rng, 180)
    if t is None:
        return None
    ep = tl.endpoint_text(p, t)
    for k in range(rng.randint(5, 30)):
        at = t + rng.uniform(0, 180)
        tl.kernel(at, f"Packet has unallowed src IP (10.20.77.{k + 1}) from peer {p.idx + 1} ({ep})")
    tl.claim(p, t, t + 180)
    return _label(tl, "spoofing", t, t + 180, _entity(p, tl.endpoint_ip(p, t)))


def inject_dormant(tl: Timeline, p: Peer, rng: random.Random) -> Label | None:
    if p.kind != "office" or tl.claimed.get(p.key):
        return None
    p.sessions = []
    p.initial_handshake = int(tl.spec.start_epoch - rng.uniform(40, 90) * DAY)
    t = rng.uniform(tl.attack_from, tl.spec.end_epoch - MIN_BEFORE_END)
    length = rng.uniform(20, 60) * 60
    ip = p.network.address(rng)
    tl.attack_session(p, t, t + length, ip)
    tl.claim(p, tl.spec.start_epoch, tl.spec.end_epoch)
    return _label(
        tl, "dormant", t, t + length, _entity(p, ip), idle_days=round((t - p.initial_handshake) / DAY, 1)
    )


def inject_off_hours(tl: Timeline, p: Peer, rng: random.Random) -> Label | None:
    if p.kind != "office":
        return None
    length = rng.uniform(30, 60) * 60
    t = _free_time(tl, p, length, rng, night=True)
    if t is None or not _worked_before(tl, p, t):
        return None
    tl.attack_session(p, t, t + length, p.home_ip)
    tl.claim(p, t, t + length)
    return _label(
        tl,
        "off_hours",
        t,
        t + length,
        _entity(p, p.home_ip),
        local_hour=round(((t + p.offset) % DAY) / HOUR, 2),
    )


def inject_escalation(tl: Timeline, p: Peer, rng: random.Random) -> Label | None:
    length = rng.uniform(20, 40) * 60
    t = _free_time(tl, p, length, rng)
    if t is None:
        return None
    ip, cc = _hostile(tl, p, rng)
    tl.attack_session(p, t, t + length, ip)
    edr_at = t + rng.uniform(120, 600)
    tl.context(
        edr_at,
        {
            "kind": "edr",
            "time": _iso(edr_at),
            "vendor": "CrowdStrike",
            "host": p.device,
            "user": p.user,
            "host_ip": [p.tunnel_ip],
            "severity": "high",
            "rule": "Credential dumping via LSASS access",
            "rule_id": "CS-1042",
            "description": "lsass.exe memory read by an unsigned process",
            "id": f"sim-edr-{tl.label_seq + 1}",
        },
    )
    tl.claim(p, t, t + length)
    return _label(tl, "escalation", t, t + length, _entity(p, ip), country=cc, edr_at=round(edr_at, 3))


def inject_rogue_peer(tl: Timeline, p: Peer, rng: random.Random) -> Label | None:
    for _ in range(40):
        t = rng.uniform(tl.attack_from, tl.spec.end_epoch - MIN_BEFORE_END)
        if not tl.in_change_window(t):
            break
    else:
        return None
    if tl.label_seq % 2 == 0:
        key = make_key(rng)
        ip, _country = _hostile(tl, p, rng)
        tl.rogue(t, key, f"10.8.250.{tl.label_seq % 250 + 2}/32", ip)
        # the change stays until someone reverts it: the label lasts to the end of the simulation
        end = tl.spec.end_epoch
        return _label(tl, "rogue_peer", t, end, {"peer_key": key, "source_ip": ip}, variant="new-peer")
    if tl.claimed.get(p.key) or p.kind == "server":
        return None
    tl.widen(p, t, "10.20.0.0/16")
    tl.claim(p, t, tl.spec.end_epoch)
    return _label(
        tl, "rogue_peer", t, tl.spec.end_epoch, {"peer_key": p.key, "user": p.user}, variant="allowed-ips"
    )


def _iso(t: float) -> str:
    from .writers import iso

    return iso(t)


INJECTORS: dict[str, Callable[[Timeline, Any, random.Random], Label | None]] = {
    "rogue_peer": inject_rogue_peer,
    "geo": inject_geo,
    "travel": inject_travel,
    "spike": inject_spike,
    "lateral": inject_lateral,
    "handshake_flood": inject_handshake_flood,
    "spoofing": inject_spoofing,
    "key_sharing": inject_key_sharing,
    "dormant": inject_dormant,
    "off_hours": inject_off_hours,
    "escalation": inject_escalation,
}

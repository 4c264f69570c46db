"""The benign population: who the peers are, where they connect from, and when.

Three behaviours, mixed like a company's remote-access gateway:

* **office** (70 %): a fixed-line home connection; weekdays around 08:30–17:00 local time, rarely at
  weekends; NAT rebinding changes the port now and then. Some travel (a day in transit, then sessions
  from the destination's hotel network).
* **mobile** (22 %): phones on CGNAT — every session and every half hour a new address of the same
  mobile AS in the same country; one to three short sessions a day between 07:00 and 23:00.
* **server** (8 %): always connected (keepalive), little traffic, and a big but regular backup at
  02:00 local every night.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass, field

from .world import Country, Network, World, distance_km

__all__ = ["Peer", "Population", "Trip"]

HOUR = 3600.0
DAY = 86400.0


@dataclass(slots=True)
class Trip:
    depart: float
    arrive: float
    back: float
    country: Country
    network: Network


@dataclass(slots=True)
class Peer:
    idx: int
    key: str
    user: str
    device: str
    kind: str  # office | mobile | server
    home: Country
    network: Network
    home_ip: str
    tunnel_ip: str
    rate_rx: float  # bytes/s while active
    rate_tx: float
    keepalive: int
    sessions: list[tuple[float, float]] = field(default_factory=list)
    trip: Trip | None = None
    servers: tuple[str, ...] = ()
    provisioned_at: float | None = None  # benign addition inside a change window
    initial_handshake: int = 0

    @property
    def offset(self) -> float:
        return self.home.utc_offset_hours * HOUR


def make_key(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(32)).decode()


def tunnel_ip(idx: int) -> str:
    return f"10.8.{idx // 250}.{idx % 250 + 2}"


class Population:
    def __init__(self, world: World, n: int, start: float, end: float, rng: random.Random) -> None:
        self.world = world
        self.start = start
        self.end = end
        self.rng = rng
        self.peers: list[Peer] = [self._peer(i) for i in range(n)]
        for p in self.peers:
            self._schedule(p)

    def _peer(self, i: int) -> Peer:
        rng = self.rng
        r = rng.random()
        kind = "office" if r < 0.70 else "mobile" if r < 0.92 else "server"
        home = rng.choice(self.world.countries("home"))
        net = self.world.network(home.code, "mobile" if kind == "mobile" else "fixed")
        if kind == "server":
            net = self.world.network(home.code, "hosting")
        user = f"svc-backup-{i:05d}" if kind == "server" else f"user{i:05d}"
        scale = {"office": 20_000.0, "mobile": 4_000.0, "server": 300.0}[kind]
        return Peer(
            idx=i,
            key=make_key(rng),
            user=user,
            device=f"{'srv' if kind == 'server' else 'laptop' if kind == 'office' else 'phone'}-{i:05d}",
            kind=kind,
            home=home,
            network=net,
            home_ip=net.address(rng),
            tunnel_ip=tunnel_ip(i),
            rate_rx=scale * rng.lognormvariate(0, 0.5),
            rate_tx=scale * 3 * rng.lognormvariate(0, 0.5),
            keepalive=25 if kind != "office" else 0,
            servers=tuple(f"10.20.1.{rng.randrange(1, 60)}" for _ in range(2)),
            initial_handshake=int(self.start - rng.uniform(600, 3 * DAY)),
        )

    def add(self, at: float) -> Peer:
        """A peer provisioned later (inside a change window): an office user's new laptop."""
        p = self._peer(len(self.peers))
        p.kind, p.keepalive = "office", 0
        p.network = self.world.network(p.home.code, "fixed")
        p.home_ip = p.network.address(self.rng)
        p.user = f"user{p.idx:05d}"
        p.device = f"laptop-{p.idx:05d}"
        p.provisioned_at = at
        p.initial_handshake = 0
        self.peers.append(p)
        self._schedule(p, after=at + HOUR)
        return p

    # ------------------------------------------------------------------ schedules
    def _schedule(self, p: Peer, after: float | None = None) -> None:
        rng = self.rng
        lo = after if after is not None else self.start
        if p.kind == "server":
            p.sessions = [(lo, self.end)]
            return
        out: list[tuple[float, float]] = []
        day0 = self.start - p.offset  # local midnight of the first day, in UTC
        days = int((self.end - self.start) / DAY) + 2
        for d in range(-1, days):
            midnight = day0 + d * DAY
            weekday = d % 7 < 5  # the simulation starts on a Monday
            if p.kind == "office":
                if weekday and rng.random() < 0.92:
                    s = midnight + rng.gauss(8.5, 0.75) * HOUR
                    out.append((s, s + min(11.0, max(2.0, rng.gauss(8.3, 1.0))) * HOUR))
                elif not weekday and rng.random() < 0.12:
                    s = midnight + rng.uniform(10, 19) * HOUR
                    out.append((s, s + rng.uniform(0.5, 3.0) * HOUR))
            else:
                starts = sorted(rng.uniform(7, 22.5) for _ in range(rng.randint(1, 3)))
                last = 0.0
                for h in starts:
                    s = max(midnight + h * HOUR, last + 600)
                    e = s + rng.uniform(10, 90) * 60
                    out.append((s, e))
                    last = e
        p.sessions = [
            (max(s, lo), min(e, self.end)) for s, e in out if e > lo and s < self.end and e - s > 120
        ]

    def plan_trip(self, p: Peer, depart_day: int) -> Trip | None:
        """A benign trip: no session for the flight (slower than an airliner), then the destination."""
        rng = self.rng
        dest = rng.choice(self.world.countries("travel"))
        flight_h = distance_km(p.home, dest) / 700.0 + 3.0
        depart = self.start + depart_day * DAY + 18 * HOUR - p.offset
        arrive = depart + flight_h * HOUR
        back = min(self.end, arrive + rng.uniform(1.5, 2.5) * DAY)
        if arrive >= self.end - 6 * HOUR:
            return None
        net = self.world.network(dest.code, "fixed")
        trip = Trip(depart, arrive, back, dest, net)
        # sessions abroad: evenings and mornings in the destination's local time
        kept = [(s, e) for s, e in p.sessions if e <= depart or s >= back + flight_h * HOUR]
        local = dest.utc_offset_hours * HOUR
        t = arrive + 2 * HOUR
        while t < back:
            h = ((t + local) % DAY) / HOUR
            if 7 <= h <= 22:
                e = min(back, t + rng.uniform(0.5, 2.0) * HOUR)
                kept.append((t, e))
                t = e + rng.uniform(3, 8) * HOUR
            else:
                t += HOUR
        p.sessions = sorted(kept)
        p.trip = trip
        return trip

    def free(self, p: Peer, a: float, b: float) -> bool:
        """No session of ``p`` touches [a, b]."""
        return all(e < a or s > b for s, e in p.sessions)

    def session_at(self, p: Peer, t: float) -> tuple[float, float] | None:
        for s, e in p.sessions:
            if s <= t <= e:
                return (s, e)
        return None

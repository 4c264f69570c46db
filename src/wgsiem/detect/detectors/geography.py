"""Handshakes from an unexpected geography: a new country or AS for the user, or impossible travel.

Per user (``user.name``, else the peer key), from the events that place the peer's endpoint
(``handshake``, ``endpoint-changed``, ``session-started`` with ``source.geo`` from ``enrich_geo``):

* **new country / new AS** — the countries and ASNs the user connected from; after ``learning_days``
  from the user's first event, a country not in the set raises (``level``), an AS not in the set
  raises at ``new_asn_level`` (a new mobile carrier is common, a new country much less so);
* **impossible travel** — the speed between the previous and this location (great circle / time)
  above ``max_speed_kmh``, over more than ``min_distance_km`` (city-level geo is that imprecise);
  always checked, learning or not.

The learning clock and the known places start when the gateway first lists the peer: a
``peer-added`` with ``source.geo`` (``wg_state``'s first poll carries each peer's current endpoint)
teaches its country and AS without judging it, so a user who connected yesterday from home is known
from home even if the collector started today, and a key whose first handshake after a week of
listing comes from elsewhere is judged as the new place it is.

**Places familiar to the organisation.** A place is a (country, AS) pair. A user *settles* at a
place when seen there again at least ``settle_hours`` (4) after first — an afternoon at a customer's
site, an evening in a hotel; an attacker's session with a stolen key lasts minutes. A place where
``familiar_min_users`` (2) other users have settled is a destination of the organisation's own
travel: a user's first connection from it is not a new-country (or new-AS) alert, unless an MFA
failure of the user lies in ``mfa_window_secs``. A stay that began with impossible travel never
counts (a key taken over mid-session keeps the attacker's endpoint for hours: in the session-5
2,000-peer evaluation such stays made the attackers' hosting networks "familiar" and hid 27 of 50
escalation attacks). Impossible travel is judged as always. Why: without
a travel calendar feed, business trips were every false alert of this rule in the session-4 and
session-5 evaluations (a trip is where a new country is normal); what a trip has and a stolen key
used from a hosting network abroad has not is other employees who stayed at the same place. The
price: an attacker who connects from a hotel network where two colleagues stayed for half a day is
not flagged by country alone (Entra ID's "familiar locations" make the same trade). The
organisation's places are bounded (``max_places``, least recently used out), each holding at most
``familiar_min_users`` settled users.

No alert while the user is marked travelling (``wireguard.user.travelling: true`` on the event, or the
user in ``travelling_users``). MFA context (``identity-mfa`` events of the ``context`` source): a
successful MFA from the same country within ``mfa_window_secs`` before lowers the level to
``mfa_lowered_level``; ``mfa_failures_raise`` failed MFAs in that window raise it to ``critical``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from wgsiem.detect.detector import BoundedTable, Finding, first, geo_distance_km, location, user_key

from . import DetectorOptions, action, event_id_of

__all__ = ["UnexpectedGeography"]

_PLACING = frozenset({"handshake", "endpoint-changed", "session-started"})


class Options(DetectorOptions):
    learning_days: float = Field(7.0, ge=0)
    max_speed_kmh: float = Field(1000.0, gt=0)
    min_distance_km: float = Field(500.0, ge=0)
    new_asn: bool = True
    new_asn_level: str = "low"
    travelling_users: tuple[str, ...] = ()
    mfa_window_secs: float = Field(900.0, ge=0)
    mfa_lowered_level: str = "low"
    mfa_failures_raise: int = Field(1, ge=1)
    settle_hours: float = Field(
        4.0, ge=0, description="a user seen at a place this long after first has stayed"
    )
    familiar_min_users: int = Field(
        2, ge=0, description="other users settled at a place that make it familiar (0: off)"
    )
    max_places: int = Field(10_000, ge=1, description="places (country, AS) of the organisation remembered")
    max_countries: int = Field(32, ge=1)
    max_asns: int = Field(64, ge=1)
    max_users: int = Field(200_000, ge=1)
    ttl_days: float = Field(180.0, ge=0)


class UnexpectedGeography:
    wants_alerts: ClassVar[bool] = False
    actions: ClassVar[frozenset[str] | None] = frozenset(
        {"handshake", "endpoint-changed", "session-started", "identity-mfa", "peer-added"}
    )

    def __init__(self, options: dict[str, Any]) -> None:
        self.o = Options(**options)
        self._users = BoundedTable(self.o.max_users, self.o.ttl_days * 86400)
        self._mfa = BoundedTable(self.o.max_users, self.o.mfa_window_secs or 1)
        self._travelling = frozenset(self.o.travelling_users)
        # place "CC/ASN" → users settled there (at most familiar_min_users): the organisation's places
        self._places = BoundedTable(self.o.max_places, self.o.ttl_days * 86400)

    def observe(self, doc: dict[str, Any], at: float) -> list[Finding]:
        act = action(doc)
        if act == "identity-mfa":
            self._observe_mfa(doc, at)
            return []
        if act not in _PLACING:
            if act == "peer-added":
                self._listed(doc, at)
            return []
        country = first(doc, "source.geo.country_iso_code")
        if country is None:
            return []
        who = user_key(doc)
        if who is None:
            return []
        key = who[1]
        asn = first(doc, "source.as.number")
        ev = event_id_of(doc)
        st = self._users.get(key, at)
        here = location(doc)
        place = f"{country}/{asn}" if asn is not None else str(country)
        if st is None:
            st = {"first": at, "countries": [country], "asns": [asn] if asn is not None else [], "last": None}
            st["last"] = [at, country, here, ev]
            st["places"] = {place: [at, False]}
            self._users.put(key, st, at)
            return []
        self._settle(st, key, place, at)
        reasons: list[str] = []
        details: dict[str, Any] = {"country": country}
        # a peer listed before it ever connected has no place yet: its first one (country and AS) is
        # learned, not judged
        learned = bool(st["countries"]) and at - st["first"] >= self.o.learning_days * 86400
        if learned and country not in st["countries"]:
            reasons.append(f"first connection from country {country} (known: {', '.join(st['countries'])})")
            details["known_countries"] = list(st["countries"])
        new_asn = learned and self.o.new_asn and asn is not None and asn not in st["asns"]
        prev = st["last"]
        if prev is not None and here is not None and prev[2] is not None and at >= prev[0]:
            km = geo_distance_km(prev[2][0], prev[2][1], here[0], here[1])
            hours = max((at - prev[0]) / 3600.0, 1 / 3600.0)
            if km > self.o.min_distance_km and km / hours > self.o.max_speed_kmh:
                reasons.append(f"impossible travel: {km:.0f} km from {prev[1]} in {at - prev[0]:.0f} s")
                details.update(distance_km=round(km), speed_kmh=round(km / hours), previous_country=prev[1])
                row = st["places"].get(place)
                if row is not None and row[1] is False:
                    row[1] = None  # reached impossibly: this stay never makes the place familiar
        previous_id = prev[3] if prev is not None else None
        # learn
        if country not in st["countries"]:
            st["countries"] = (st["countries"] + [country])[-self.o.max_countries :]
        if asn is not None and asn not in st["asns"]:
            st["asns"] = (st["asns"] + [asn])[-self.o.max_asns :]
        st["last"] = [at, country, here, ev]
        self._users.put(key, st, at)
        level: str | None = None
        if not reasons and new_asn:
            reasons.append(f"first connection from AS{asn}")
            level = self.o.new_asn_level
        if not reasons:
            return []
        user = first(doc, "user.name")
        if "distance_km" not in details and self._familiar(place, key, at):
            if not self._mfa_failed(str(user) if user else key, at):
                return []  # a destination of the organisation's own travel (see the module doc)
            details["familiar_place"] = True
        if (user is not None and str(user) in self._travelling) or first(
            doc, "wireguard.user.travelling"
        ) is True:
            return []
        level = self._mfa_level(key, str(user) if user else None, country, at) or level
        return [
            Finding(
                who[0],
                key,
                "; ".join(reasons),
                evidence_ids=tuple(e for e in (previous_id, ev) if e),
                level=level,
                details=details,
            )
        ]

    def _settle(self, st: dict[str, Any], key: str, place: str, at: float) -> None:
        """Remember when the user was first at ``place``; once seen there ``settle_hours`` later, the
        user has stayed, and the place counts them among its settled users. A row is ``[first seen,
        state]``: ``False`` not yet, ``True`` settled, ``None`` never — the user arrived there by
        impossible travel (a key taken over mid-session stays at the attacker's place for hours; that
        stay must not make the attacker's network familiar for the next victim)."""
        places: dict[str, list[Any]] = st.setdefault("places", {})
        row = places.get(place)
        if row is None:
            places[place] = [at, False]
            if len(places) > self.o.max_countries:
                del places[min(places, key=lambda k: places[k][0])]
            return
        if row[1] is not False or at - row[0] < self.o.settle_hours * 3600:
            return
        row[1] = True
        settled: list[str] = self._places.get(place, at) or []
        if key not in settled and len(settled) < max(1, self.o.familiar_min_users) + 1:
            settled = [*settled, key]
        self._places.put(place, settled, at)

    def _familiar(self, place: str, key: str, at: float) -> bool:
        n = self.o.familiar_min_users
        if n <= 0:
            return False
        settled = self._places.get(place, at) or []
        return sum(1 for k in settled if k != key) >= n

    def _mfa_failed(self, who: str, at: float) -> bool:
        st = self._mfa.get(who, at)
        horizon = at - self.o.mfa_window_secs
        return st is not None and any(horizon <= t <= at for t in st["failed"])

    def _listed(self, doc: dict[str, Any], at: float) -> None:
        """Learn (never judge) the place of a peer the gateway lists; the travel check starts with
        the first handshake (the listing's endpoint has no handshake time of its own)."""
        who = user_key(doc)
        if who is None or self._users.get(who[1], at) is not None:
            return
        country = first(doc, "source.geo.country_iso_code")
        asn = first(doc, "source.as.number")
        st = {
            "first": at,
            "countries": [country] if country is not None else [],
            "asns": [asn] if asn is not None else [],
            "last": None,
            "places": {}
            if country is None
            else {f"{country}/{asn}" if asn is not None else str(country): [at, False]},
        }
        self._users.put(who[1], st, at)

    def _observe_mfa(self, doc: dict[str, Any], at: float) -> None:
        user = first(doc, "user.name")
        if user is None:
            return
        outcome = str(first(doc, "event.outcome") or "")
        country = first(doc, "source.geo.country_iso_code")
        st = self._mfa.get(str(user), at) or {"ok": [], "failed": []}
        if outcome == "success":
            st["ok"] = [*st["ok"][-7:], [at, country]]
        elif outcome == "failure":
            st["failed"] = [*st["failed"][-15:], at]
        self._mfa.put(str(user), st, at)

    def _mfa_level(self, key: str, user: str | None, country: Any, at: float) -> str | None:
        st = self._mfa.get(user or key, at)
        if st is None:
            return None
        horizon = at - self.o.mfa_window_secs
        if sum(1 for t in st["failed"] if horizon <= t <= at) >= self.o.mfa_failures_raise:
            return "critical"
        if any(horizon <= t <= at and c == country for t, c in st["ok"]):
            return self.o.mfa_lowered_level
        return None

    def snapshot(self) -> dict[str, Any]:
        return {
            "users": self._users.snapshot(),
            "mfa": self._mfa.snapshot(),
            "places": self._places.snapshot(),
        }

    def restore(self, data: dict[str, Any]) -> None:
        self._users.restore(data.get("users"))
        self._mfa.restore(data.get("mfa"))
        self._places.restore(data.get("places"))

    def entries(self) -> int:
        return len(self._users)

"""Activity outside the user's usual hours: a session that starts deep inside the user's night.

Per user (``user.name``, else the peer key), which hours of the day the user is *active* in: for
each of the 24 hours, on how many distinct days a session covered it (a ``session-ended`` marks every
hour from its start to its end, a ``session-started`` its first hour). Hours are **local to where
the user is**: the time zone of the endpoint (``source.geo.timezone``, from ``enrich_geo``), else
``timezone`` — one detector serves users in every time zone.

A ``session-started`` is judged once the profile is worth something: ``learning_days`` since the
user was first seen — from the gateway's first listing of the peer (``peer-added``): a quiet night
while the gateway was watched *is* information — at least ``min_sessions`` sessions, and at least
``min_active_hours`` distinct hours of the day covered (one working day, even a short one). It raises
when the session starts at least ``tolerance_hours`` away from every hour the user has ever been
active in (distance on the 24-hour circle, to the nearest edge of an active hour). So with a stable
08–17 day: 07:30 is half an hour from the profile, quiet; 03:00 is five hours away, an alert.

**The profile's edges are judged only once they are known.** Until the user has been active on
``mature_days`` distinct days (a week), only a start in the night (``night_start_hour`` to
``night_end_hour`` local, 00–05) is judged; evenings and early mornings wait. A phone's one to three
short sessions a day cover a few scattered hours: after three days its profile may say 12–18, and
its owner's 07:30 train ride is no sign of a stolen key (that was every false alert of this rule in
the session-5 evaluation), while 03:00 is as odd after one office day as after a month. Night-shift
workers are not hurt by the night window: their own first nights make the night usual for them.

Why not a share of session starts per hour (the first version): starts cluster around 08:30, so the
afternoon looks "unusual" although the user is online all of it, and a share needs weeks of
sessions where covered hours need one day. Noise avoided on purpose: sessions from a country other
than the user's home (the country with most active days, or any with a week of them) are not judged
— a trip's hotel evenings and jet lag are no signal, and the new country is the geography rule's
business; weekday and weekend share one profile (weekend daytime sessions of an office worker lie
inside the weekday span or extend it, and 03:00 is as odd on a Sunday); sessions whose start was not
observed (``wireguard.session.observed_start: false``: already running when the collector started)
neither mark their start hour nor are judged. 48 small numbers, a day count and a few countries per user.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import Field

from wgsiem.detect.detector import BoundedTable, Finding, first, user_key

from . import DetectorOptions, action, event_id_of

__all__ = ["UsualHours"]

_HOUR = 3600.0


class Options(DetectorOptions):
    timezone: str = Field("UTC", description="clock of users whose endpoint has no geo time zone")
    learning_days: float = Field(14.0, ge=0)
    min_sessions: int = Field(1, ge=1)
    min_active_hours: int = Field(4, ge=1, le=24)
    tolerance_hours: float = Field(2.75, ge=0, le=12)
    mature_days: int = Field(
        7, ge=1, description="active days after which a start at any hour is judged (before: only the night)"
    )
    night_start_hour: int = Field(0, ge=0, le=23, description="local hour the night starts (inclusive)")
    night_end_hour: int = Field(5, ge=0, le=24, description="local hour the night ends (exclusive)")
    max_countries: int = Field(8, ge=1, description="countries remembered per user")
    max_session_hours: float = Field(48.0, gt=0, description="hours of one session marked at most")
    max_users: int = Field(200_000, ge=1)
    ttl_days: float = Field(90.0, ge=0)


@functools.lru_cache(maxsize=512)
def _zone(name: str) -> dt.tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return None


def _iso_epoch(value: Any) -> float | None:
    if isinstance(value, str) and value:
        try:
            t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()
    return None


def _gap(x: float, hours: list[int]) -> float:
    """Hours from ``x`` (fractional local hour) to the nearest active hour ``[h, h + 1)`` on the
    24-hour circle; 0 inside one."""
    best = 24.0
    for h, n in enumerate(hours):
        if n:
            d = (x - h) % 24.0  # 0 ≤ d < 24: how far past the start of hour h
            if d < 1.0:
                return 0.0
            best = min(best, d - 1.0, 24.0 - d)
    return best


class UsualHours:
    wants_alerts: ClassVar[bool] = False
    actions: ClassVar[frozenset[str] | None] = frozenset({"session-started", "session-ended", "peer-added"})

    def __init__(self, options: dict[str, Any]) -> None:
        self.o = Options(**options)
        self._tz = _zone(self.o.timezone) or dt.UTC
        # who → {"first": t, "n": sessions, "h": [days active per hour], "l": [last day counted per hour]}
        self._users = BoundedTable(self.o.max_users, self.o.ttl_days * 86400)

    def _local(self, doc: dict[str, Any], at: float) -> dt.datetime:
        src = doc.get("source")
        geo = src.get("geo") if type(src) is dict else None
        name = geo.get("timezone") if type(geo) is dict else None
        tz = (_zone(name) if type(name) is str else None) or self._tz
        return dt.datetime.fromtimestamp(at, tz)

    def observe(self, doc: dict[str, Any], at: float) -> list[Finding]:
        act = action(doc)
        if act != "session-started" and act != "session-ended" and act != "peer-added":
            return []
        who = user_key(doc)
        if who is None:
            return []
        st = self._users.get(who[1], at)
        if st is None:
            st = {"first": at, "n": 0, "h": [0] * 24, "l": [-1] * 24, "c": []}
        elif act == "peer-added":
            return []
        out: list[Finding] = []
        if act == "peer-added":
            pass  # the gateway lists the peer: the observation (and learning) period starts here
        elif act == "session-ended":
            start = _iso_epoch(first(doc, "event.start", "wireguard.session.start"))
            if start is None or start > at:
                start = at
            start = max(start, at - self.o.max_session_hours * _HOUR)
            t = start
            while True:
                self._mark(st, self._local(doc, t))
                if t >= at:
                    break
                t = min(at, t + _HOUR)
        elif first(doc, "wireguard.session.observed_start") is not False:
            local = self._local(doc, at)
            country = first(doc, "source.geo.country_iso_code")
            if country is None or self._at_home(st, str(country)):
                f = self._judge(doc, who, st, local, at)
                if f is not None:
                    out.append(f)
            if country is not None:
                self._place(st, str(country), local.toordinal())
            st["n"] += 1
            self._mark(st, local)
        self._users.put(who[1], st, at)
        return out

    @staticmethod
    def _at_home(st: dict[str, Any], country: str) -> bool:
        """Judged only where the user lives: the country with the most active days (the first one
        on a tie), or any with a week of them. Elsewhere the user travels — jet lag and hotel
        evenings are no signal, and a new country is the geography rule's business."""
        places: list[list[Any]] = st["c"]
        if not places:
            return True
        most = max(n for _, n, _ in places)
        main = next(cc for cc, n, _ in places if n == most)  # the first learned on a tie
        days = next((n for cc, n, _ in places if cc == country), 0)
        return days >= 7 or country == main

    def _place(self, st: dict[str, Any], country: str, day: int) -> None:
        places: list[list[Any]] = st["c"]
        for row in places:
            if row[0] == country:
                if row[2] != day:
                    row[1] += 1
                    row[2] = day
                return
        places.append([country, 1, day])
        if len(places) > self.o.max_countries:
            places.sort(key=lambda r: -r[1])
            del places[self.o.max_countries :]

    @staticmethod
    def _mark(st: dict[str, Any], local: dt.datetime) -> None:
        day = local.toordinal()
        h = local.hour
        if st["l"][h] != day:
            st["l"][h] = day
            st["h"][h] += 1
        if st.get("ld") != day:  # distinct active days (state of an earlier version starts at 0)
            st["ld"] = day
            st["d"] = st.get("d", 0) + 1

    def _in_night(self, x: float) -> bool:
        a, b = self.o.night_start_hour, self.o.night_end_hour
        return a <= x < b if a <= b else (x >= a or x < b)

    def _judge(
        self, doc: dict[str, Any], who: tuple[str, str], st: dict[str, Any], local: dt.datetime, at: float
    ) -> Finding | None:
        o = self.o
        hours: list[int] = st["h"]
        if (
            at - st["first"] < o.learning_days * 86400
            or st["n"] < o.min_sessions
            or sum(1 for n in hours if n) < o.min_active_hours
        ):
            return None
        x = local.hour + local.minute / 60.0
        gap = _gap(x, hours)
        if gap < o.tolerance_hours:
            return None
        days = st.get("d", 0)
        if days < o.mature_days and not self._in_night(x):
            # a few days of a phone's scattered sessions (or a short office week) do not say when the
            # user's day begins or ends: before a week of activity only a start in the night is judged
            return None
        usual = [h for h in range(24) if hours[h]]
        ev = event_id_of(doc)
        zone = local.tzname() or o.timezone
        return Finding(
            who[0],
            who[1],
            f"session at {local:%H:%M} {zone}, {gap:.1f} h from the user's usual hours "
            + ", ".join(f"{h:02d}" for h in usual),
            evidence_ids=(ev,) if ev else (),
            details={
                "hour": local.hour,
                "local_time": local.strftime("%H:%M"),
                "timezone": zone,
                "hours_from_usual": round(gap, 2),
                "usual_hours": usual,
                "sessions_learned": st["n"],
                "active_days": days,
            },
        )

    def snapshot(self) -> dict[str, Any]:
        return {"users": self._users.snapshot()}

    def restore(self, data: dict[str, Any]) -> None:
        rows = data.get("users")
        self._users.restore(rows)
        # state of the earlier format (a histogram of session starts) is relearned, not misread
        for key, value in list(self._users.items()):
            if not (
                isinstance(value, dict)
                and isinstance(value.get("h"), list)
                and len(value["h"]) == 24
                and isinstance(value.get("c"), list)
            ):
                self._users.pop(key)

    def entries(self) -> int:
        return len(self._users)

"""Activity outside the user's usual hours.

Per user (``user.name``, else the peer key), a histogram of the hours of the day (in ``timezone``)
in which sessions started (``session-started``, else ``handshake``). Once the user has
``min_sessions`` sessions over at least ``learning_days``, a session in an hour that holds less than
``min_share`` of them — and whose neighbouring hours do too, so 08:59 vs 09:01 is no surprise —
raises. 24 counters per user.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import Field

from wgsiem.detect.detector import BoundedTable, Finding, user_key

from . import DetectorOptions, action, event_id_of

__all__ = ["UsualHours"]


class Options(DetectorOptions):
    actions: tuple[str, ...] = ("session-started",)
    timezone: str = "UTC"
    learning_days: float = Field(14.0, ge=0)
    min_sessions: int = Field(20, ge=1)
    min_share: float = Field(0.02, ge=0, le=1)
    max_users: int = Field(200_000, ge=1)
    ttl_days: float = Field(90.0, ge=0)


class UsualHours:
    wants_alerts: ClassVar[bool] = False

    def __init__(self, options: dict[str, Any]) -> None:
        self.o = Options(**options)
        self._tz = ZoneInfo(self.o.timezone)
        self._actions = frozenset(self.o.actions)
        self.actions = self._actions
        self._users = BoundedTable(self.o.max_users, self.o.ttl_days * 86400)

    def observe(self, doc: dict[str, Any], at: float) -> list[Finding]:
        if action(doc) not in self._actions:
            return []
        who = user_key(doc)
        if who is None:
            return []
        hour = dt.datetime.fromtimestamp(at, self._tz).hour
        st = self._users.get(who[1], at) or {"first": at, "hours": [0] * 24}
        hours: list[int] = st["hours"]
        total = sum(hours)
        finding: list[Finding] = []
        if total >= self.o.min_sessions and at - st["first"] >= self.o.learning_days * 86400:
            near = hours[(hour - 1) % 24] + hours[hour] + hours[(hour + 1) % 24]
            if near < self.o.min_share * total:
                ev = event_id_of(doc)
                usual = [h for h in range(24) if hours[h] >= self.o.min_share * total]
                finding.append(
                    Finding(
                        who[0],
                        who[1],
                        f"session at {hour:02d}h {self.o.timezone}; usual hours: "
                        + (", ".join(f"{h:02d}" for h in usual) or "none"),
                        evidence_ids=(ev,) if ev else (),
                        details={"hour": hour, "usual_hours": usual, "sessions_learned": total},
                    )
                )
        hours[hour] += 1
        self._users.put(who[1], st, at)
        return finding

    def snapshot(self) -> dict[str, Any]:
        return {"users": self._users.snapshot()}

    def restore(self, data: dict[str, Any]) -> None:
        self._users.restore(data.get("users"))

    def entries(self) -> int:
        return len(self._users)

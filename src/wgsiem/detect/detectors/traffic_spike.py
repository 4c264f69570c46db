"""Traffic spike: bytes in a window ≥ ``factor`` × the robust baseline of that peer (and interface).

Bytes come from ``wg_state``'s ``transfer`` events (``network.bytes``: received + sent since the
previous one). They are summed in tumbling windows of ``window_secs`` of event time, per peer key and
per gateway interface. The alert fires *during* the window, on the event that lifts the running sum to
``factor`` × baseline and at least ``min_bytes``, so a burst is seen within one poll of crossing.

Baseline: for each hour of the week (168 slots, in ``timezone``) a streaming median of the closed
windows' sums (the "frugal" estimator: the estimate moves a step of ``step`` × itself towards each new
value, so one outlier moves it a little and a spike never becomes the new normal in one go). A slot
with fewer than ``min_samples`` windows falls back to the same hour of the day (24 slots: a nightly
backup is learned after its first night, not after its first week), then to the peer's all-hours
median; with fewer than that too, the peer is still learning and nothing fires. The all-hours
median stands in for an hour never seen only once the key has been watched ``learning_days``: a
peer's first nightly backup, judged by its daytime windows, is not exfiltration (it was 90 % of the
false alerts of the evaluation). A baseline of the same hour is evidence from the start. State
per peer: at most 193 pairs of numbers.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import Field

from wgsiem.detect.detector import BoundedTable, Finding, first, hour_of_week

from . import DetectorOptions, action, event_id_of

__all__ = ["TrafficSpike"]

_ALL = "all"
_BASIS = {"d": "this hour of the day", "a": "all hours"}
_BASIS |= dict.fromkeys("0123456789", "this hour of the week")


class Options(DetectorOptions):
    window_secs: float = Field(300.0, gt=0)
    factor: float = Field(10.0, gt=1)
    min_bytes: int = Field(50_000_000, ge=0)
    interface_factor: float = Field(10.0, gt=1)
    interface_min_bytes: int = Field(500_000_000, ge=0)
    min_samples: int = Field(6, ge=1)
    learning_days: float = Field(
        7.0, ge=0, description="no alert for a key before it has been watched this long (event time)"
    )
    step: float = Field(0.1, gt=0, le=1)
    timezone: str = "UTC"
    per_interface: bool = True
    max_keys: int = Field(200_000, ge=1)
    ttl_days: float = Field(35.0, ge=0)


def _update(est: list[float] | None, value: float, step: float) -> list[float]:
    """One step of the frugal streaming median; ``[median, samples]``."""
    if est is None:
        return [value, 1.0]
    m, n = est
    if n < 3:  # the first few: the running median of what we have is the mean of them
        return [(m * n + value) / (n + 1), n + 1]
    delta = step * max(m, 1.0)
    if value > m:
        m = min(value, m + delta)
    elif value < m:
        m = max(value, m - delta)
    return [m, n + 1]


def _day_slot(week_slot: str) -> str:
    """The hour-of-day slot (``d0`` … ``d23``) of an hour-of-week slot."""
    return f"d{int(week_slot) % 24}"


class TrafficSpike:
    wants_alerts: ClassVar[bool] = False
    actions: ClassVar[frozenset[str] | None] = frozenset({"transfer"})

    def __init__(self, options: dict[str, Any]) -> None:
        self.o = Options(**options)
        self._tz: dt.tzinfo = ZoneInfo(self.o.timezone)
        self._learning_secs = self.o.learning_days * 86400
        # key → {"w": window index, "sum": bytes, "fired": bool, "base": {slot: [median, n]}}
        self._keys = BoundedTable(self.o.max_keys, self.o.ttl_days * 86400)

    def observe(self, doc: dict[str, Any], at: float) -> list[Finding]:
        if action(doc) != "transfer":
            return []
        nbytes = first(doc, "network.bytes")
        if not isinstance(nbytes, int | float) or isinstance(nbytes, bool) or nbytes <= 0:
            return []
        out: list[Finding] = []
        peer = first(doc, "wireguard.peer.public_key")
        if peer is not None:
            f = self._add(
                "peer:" + str(peer),
                "wireguard.peer.public_key",
                str(peer),
                float(nbytes),
                at,
                doc,
                self.o.factor,
                self.o.min_bytes,
            )
            if f:
                out.append(f)
        if self.o.per_interface:
            iface = first(doc, "wireguard.interface.name", "observer.ingress.interface.name")
            host = first(doc, "observer.hostname") or ""
            if iface is not None:
                f = self._add(
                    f"if:{host}/{iface}",
                    "wireguard.interface.name",
                    str(iface),
                    float(nbytes),
                    at,
                    doc,
                    self.o.interface_factor,
                    self.o.interface_min_bytes,
                )
                if f:
                    out.append(f)
        return out

    def _add(
        self,
        key: str,
        field: str,
        value: str,
        nbytes: float,
        at: float,
        doc: dict[str, Any],
        factor: float,
        min_bytes: int,
    ) -> Finding | None:
        w = math.floor(at / self.o.window_secs)
        st = self._keys.get(key, at)
        if st is None:
            st = {"w": w, "sum": 0.0, "fired": False, "base": {}, "slot": self._slot(w), "f": at}
        elif w > st["w"]:
            self._learn(st, st["w"])
            st.update(w=w, sum=0.0, fired=False, slot=self._slot(w))
        slot = st.get("slot") or self._slot(st["w"])
        # (a late event of an older window is counted in the current one)
        st["sum"] += nbytes
        self._keys.put(key, st, at)
        if st["fired"]:
            return None
        base = st["base"]
        for k in (slot, _day_slot(slot), _ALL):  # hour of the week, hour of the day, all hours
            est = base.get(k)
            if est is not None and est[1] >= self.o.min_samples:
                break
        else:
            return None
        if k == _ALL and at - st.get("f", 0.0) < self._learning_secs:
            return None  # an hour never seen, judged by the other hours: only after learning
        baseline = max(est[0], 1.0)
        if st["sum"] >= factor * baseline and st["sum"] >= min_bytes:
            st["fired"] = True
            ev = event_id_of(doc)
            return Finding(
                field,
                value,
                f"{st['sum']:.0f} bytes in {self.o.window_secs:.0f} s, "
                f"{st['sum'] / baseline:.1f}× the baseline of {baseline:.0f} for {_BASIS[k[0]]}",
                evidence_ids=(ev,) if ev else (),
                details={
                    "window_bytes": int(st["sum"]),
                    "baseline_bytes": round(baseline),
                    "ratio": round(st["sum"] / baseline, 2),
                    "window_secs": self.o.window_secs,
                    "scope": "peer" if key.startswith("peer:") else "interface",
                    "baseline": _BASIS[k[0]],
                },
            )
        return None

    def _slot(self, w: int) -> str:
        return str(hour_of_week(w * self.o.window_secs, self._tz))

    def _learn(self, st: dict[str, Any], w: int) -> None:
        total = st["sum"]
        if total <= 0:
            return
        slot = self._slot(w)
        base = st["base"]
        for k in (slot, _day_slot(slot), _ALL):
            base[k] = _update(base.get(k), total, self.o.step)

    def snapshot(self) -> dict[str, Any]:
        return {"keys": self._keys.snapshot()}

    def restore(self, data: dict[str, Any]) -> None:
        self._keys.restore(data.get("keys"))

    def entries(self) -> int:
        return len(self._keys)

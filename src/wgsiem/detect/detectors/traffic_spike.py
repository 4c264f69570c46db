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

from wgsiem.detect.detector import BoundedTable, Finding, getter, hour_of_week

from . import DetectorOptions, event_id_of

__all__ = ["TrafficSpike"]

_ALL = "all"
_BASIS = {"d": "this hour of the day", "a": "all hours"}
_BASIS |= dict.fromkeys("0123456789", "this hour of the week")
_UNJUDGED = -1.0  # a window whose threshold is not worked out yet (new, rolled over, restored)
_BYTES = getter("network.bytes")
_PEER = getter("wireguard.peer.public_key")
_IFACE = getter("wireguard.interface.name", "observer.ingress.interface.name")
_HOST = getter("observer.hostname")


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


class _Window:
    """One key's (peer's or interface's) current window and baselines, updated in place.

    ``limit`` caches the threshold of this window (see the module doc); ``basis`` and ``baseline`` say
    which baseline set it (for the alert's text). ``first`` is ``None`` for a state written before the
    key's first time was kept (it then counts as 0, as it always did).
    """

    __slots__ = ("base", "baseline", "basis", "fired", "first", "limit", "slot", "sum", "w")

    def __init__(
        self, w: int, total: float, fired: bool, base: dict[str, list[float]], slot: str, first: float | None
    ) -> None:
        self.w = w
        self.sum = total
        self.fired = fired
        self.base = base
        self.slot = slot
        self.first = first
        self.limit = _UNJUDGED
        self.basis = ""
        self.baseline = 0.0

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {"w": self.w, "sum": self.sum, "fired": self.fired, "base": self.base}
        out["slot"] = self.slot
        if self.first is not None:
            out["f"] = self.first
        return out


class TrafficSpike:
    wants_alerts: ClassVar[bool] = False
    actions: ClassVar[frozenset[str] | None] = frozenset({"transfer"})

    def __init__(self, options: dict[str, Any]) -> None:
        self.o = Options(**options)
        self._tz: dt.tzinfo = ZoneInfo(self.o.timezone)
        self._learning_secs = self.o.learning_days * 86400
        self._window_secs = self.o.window_secs
        self._min_samples = self.o.min_samples
        # key ("peer:<public key>" or "if:<host>/<interface>") → _Window
        self._keys = BoundedTable(self.o.max_keys, self.o.ttl_days * 86400)
        self._raw = self._keys.raw
        self._ttl_secs = self._keys.ttl_secs
        self._per_interface = self.o.per_interface
        self._slots: dict[int, str] = {}  # window index → its hour-of-week slot
        self._iface: tuple[Any, Any, str] = (None, None, "")  # the last (host, interface, key)

    def observe(self, doc: dict[str, Any], at: float) -> list[Finding]:
        # The common shapes are read inline (a Python call costs as much as a dozen dict operations);
        # anything else goes through the compiled getters, which define what is read.
        ev = doc.get("event")
        if type(ev) is not dict:
            return []
        act = ev.get("action", "")
        if act != "transfer" and (type(act) is str or str(act) != "transfer"):
            return []
        net = doc.get("network")
        nbytes = net.get("bytes") if type(net) is dict else None
        if type(nbytes) is not int and type(nbytes) is not float:
            nbytes = _BYTES(doc)
            if not isinstance(nbytes, int | float) or isinstance(nbytes, bool):
                return []
        if not nbytes > 0:
            return []
        nbytes = float(nbytes)
        w = math.floor(at / self._window_secs)
        out: list[Finding] = []
        wg = doc.get("wireguard")
        if type(wg) is dict:
            node = wg.get("peer")
            peer = node.get("public_key") if type(node) is dict else None
            node = wg.get("interface")
            iface = node.get("name") if type(node) is dict else None
        else:
            peer = iface = None
        if peer is not None and type(peer) is not str:
            peer = _PEER(doc)
            peer = str(peer) if peer is not None else None
        if peer is not None:
            st = self._add("peer:" + peer, w, nbytes, at, self.o.factor, self.o.min_bytes)
            if st is not None:
                out.append(self._finding(st, "wireguard.peer.public_key", peer, doc))
        if self._per_interface:
            if type(iface) is not str:
                iface = _IFACE(doc)
                if iface is None:
                    return out
            obs = doc.get("observer")
            host = obs.get("hostname") if type(obs) is dict else None
            if type(host) is not str:
                host = _HOST(doc) or ""
                host = host if type(host) is str else str(host)
            last_host, last_iface, key = self._iface
            if iface != last_iface or host != last_host or type(iface) is not str:
                key = f"if:{host}/{iface}"
                self._iface = (host, iface, key)
            st = self._add(key, w, nbytes, at, self.o.interface_factor, self.o.interface_min_bytes)
            if st is not None:
                out.append(self._finding(st, "wireguard.interface.name", str(iface), doc))
        return out

    def _add(
        self, key: str, w: int, nbytes: float, at: float, factor: float, min_bytes: int
    ) -> _Window | None:
        """Count ``nbytes`` in ``key``'s window; the window when this event makes it fire."""
        item = self._raw.get(key)  # BoundedTable.hit, inlined
        if item is not None and not (self._ttl_secs and at - item[0] > self._ttl_secs):
            item[0] = at
            self._raw.move_to_end(key)
            st: _Window = item[1]
            if w > st.w:
                self._learn(st)
                st.w, st.sum, st.fired, st.slot, st.limit = w, 0.0, False, self._slot(w), _UNJUDGED
        else:
            if item is not None:
                self._keys.hit(key, at)  # expired: the table drops and counts it
            st = _Window(w, 0.0, False, {}, self._slot(w), at)
            self._keys.put(key, st, at)
        # (a late event of an older window is counted in the current one)
        st.sum += nbytes
        if st.fired:
            return None
        limit = st.limit
        if limit < 0.0:
            limit = self._judge(st, factor, min_bytes)
        if not st.sum >= limit or not st.basis:  # (NaN bytes never fire; no baseline: infinity)
            return None
        if st.basis == _ALL and at - (st.first or 0.0) < self._learning_secs:
            return None  # an hour never seen, judged by the other hours: only after learning
        st.fired = True
        return st

    def _judge(self, st: _Window, factor: float, min_bytes: int) -> float:
        """Which baseline judges ``st``'s window — this hour of the week, of the day, all hours — and
        the sum that fires: ``max(factor × baseline, min_bytes)``; infinity without a baseline."""
        base = st.base
        for k in (st.slot, _day_slot(st.slot), _ALL):
            est = base.get(k)
            if est is not None and est[1] >= self._min_samples:
                st.basis, st.baseline = k, max(est[0], 1.0)
                st.limit = max(factor * st.baseline, min_bytes)
                return st.limit
        st.basis, st.limit = "", math.inf
        return math.inf

    def _finding(self, st: _Window, field: str, value: str, doc: dict[str, Any]) -> Finding:
        baseline, k = st.baseline, st.basis
        ev = event_id_of(doc)
        return Finding(
            field,
            value,
            f"{st.sum:.0f} bytes in {self.o.window_secs:.0f} s, "
            f"{st.sum / baseline:.1f}× the baseline of {baseline:.0f} for {_BASIS[k[0]]}",
            evidence_ids=(ev,) if ev else (),
            details={
                "window_bytes": int(st.sum),
                "baseline_bytes": round(baseline),
                "ratio": round(st.sum / baseline, 2),
                "window_secs": self.o.window_secs,
                "scope": "peer" if field == "wireguard.peer.public_key" else "interface",
                "baseline": _BASIS[k[0]],
            },
        )

    def _slot(self, w: int) -> str:
        slot = self._slots.get(w)
        if slot is None:
            if len(self._slots) >= 4096:  # windows move on: a small cache of the recent ones
                self._slots.clear()
            slot = self._slots[w] = str(hour_of_week(w * self.o.window_secs, self._tz))
        return slot

    def _learn(self, st: _Window) -> None:
        total = st.sum
        if total <= 0:
            return
        slot = self._slot(st.w)
        base = st.base
        for k in (slot, _day_slot(slot), _ALL):
            base[k] = _update(base.get(k), total, self.o.step)

    def _decode(self, value: Any) -> _Window | None:
        if not isinstance(value, dict):
            return None
        w, total, base = value.get("w"), value.get("sum"), value.get("base")
        if not isinstance(w, int | float) or not isinstance(total, int | float) or not isinstance(base, dict):
            return None
        first = value.get("f")
        slot = value.get("slot") or self._slot(int(w))
        return _Window(
            int(w),
            float(total),
            bool(value.get("fired")),
            base,
            str(slot),
            float(first) if isinstance(first, int | float) else None,
        )

    def snapshot(self) -> dict[str, Any]:
        return {"keys": self._keys.snapshot(_Window.encode)}

    def restore(self, data: dict[str, Any]) -> None:
        self._keys.restore(data.get("keys"), self._decode)

    def entries(self) -> int:
        return len(self._keys)

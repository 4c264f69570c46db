"""The contract of a stateful detector: a Python plugin for what a Sigma rule cannot express.

A detector is a class named by its rule file (``wgsiem.detector: wgsiem.detect.detectors.geography:
UnexpectedGeography``); the rule file carries the same metadata as a Sigma rule (title, id, name,
level, tags, samples, …) and the detector's options under ``wgsiem.options``, which the
configuration can override per rule (``detect.detector_options.<name>``). It is built as
``Cls(options)`` and is then fed every event the engine sees::

    observe(doc, at) -> list[Finding]      # at = the event's own time (POSIX seconds)
    snapshot() -> dict                     # JSON-able state, for the state file
    restore(data) -> None                  # the inverse; unknown or damaged data is ignored
    entries() -> int                       # how many keys (peers, users, …) the state holds

Rules every detector follows (the engine relies on them):

* **event time only** — decisions use ``at`` and times inside the documents, never the wall clock,
  so a replay of captures decides exactly as the live run did;
* **bounded state** — every table is a :class:`BoundedTable` (least recently used keys go first,
  entries older than a TTL of event time expire), so an attacker inventing keys costs memory up to the
  bound and no further;
* **no secrets** — a snapshot holds public keys, addresses, counters and times, never key material.

A detector sets ``actions`` (a frozenset of ``event.action`` values, class or instance attribute) to
be handed only those events — the engine routes by action, so a detector of ``transfer`` events costs
nothing on the others; without it, it sees every event. It sets ``wants_alerts = True`` to also
observe the alerts the engine raises (the escalation detector correlates them with EDR alerts).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

__all__ = [
    "LEVELS",
    "BoundedTable",
    "Detector",
    "Finding",
    "first",
    "geo_distance_km",
    "getter",
    "hour_of_week",
    "location",
    "peer_key",
    "user_key",
]

LEVELS = ("informational", "low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True)
class Finding:
    """One detection: what it is about, why, and the events that show it.

    ``level`` overrides the rule's level for this finding (e.g. MFA from the same place lowers a
    geography finding, an EDR alert escalates to ``critical``); ``details`` lands in
    ``wireguard.alert.details`` of the alert.
    """

    entity_field: str
    entity_value: str
    reason: str
    evidence_ids: tuple[str, ...] = ()
    level: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Detector(Protocol):
    wants_alerts: ClassVar[bool]

    def observe(self, doc: dict[str, Any], at: float) -> list[Finding]: ...

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, data: dict[str, Any]) -> None: ...

    def entries(self) -> int: ...


class BoundedTable:
    """An LRU map bounded to ``max_entries`` keys whose entries expire ``ttl_secs`` of event time after
    their last update (``ttl_secs=0``: never). Values must be JSON-able for :meth:`snapshot` (or be
    turned into JSON by its ``encode``).

    An entry is a mutable ``[seen, value]`` pair, so a detector whose value is a mutable object updates
    it in place and refreshes the entry with one :meth:`hit` (TTL check, ``seen`` and LRU order) instead
    of a :meth:`get` and a :meth:`put` that allocates a new pair — the per-event path of the traffic and
    lateral-movement detectors.
    """

    __slots__ = ("_data", "evicted", "max_entries", "ttl_secs")

    def __init__(self, max_entries: int, ttl_secs: float = 0.0) -> None:
        self.max_entries = max_entries
        self.ttl_secs = ttl_secs
        self._data: OrderedDict[str, list[Any]] = OrderedDict()
        self.evicted = 0

    def get(self, key: str, at: float) -> Any | None:
        item = self._data.get(key)
        if item is None:
            return None
        if self.ttl_secs and at - item[0] > self.ttl_secs:
            del self._data[key]
            self.evicted += 1
            return None
        return item[1]

    @property
    def raw(self) -> OrderedDict[str, list[Any]]:
        """The entries themselves (key → ``[seen, value]``, least recently used first) — the same
        object for the table's life — for a per-event path that inlines :meth:`hit` (on this
        platform a Python call costs as much as a dozen dict operations)."""
        return self._data

    def hit(self, key: str, at: float) -> Any | None:
        """:meth:`get` then, for a live entry, what ``put(key, <the same value>, at)`` does."""
        data = self._data
        item = data.get(key)
        if item is None:
            return None
        if self.ttl_secs and at - item[0] > self.ttl_secs:
            del data[key]
            self.evicted += 1
            return None
        item[0] = at
        data.move_to_end(key)
        return item[1]

    def put(self, key: str, value: Any, at: float) -> None:
        data = self._data
        item = data.get(key)
        if item is not None:
            item[0] = at
            item[1] = value
            data.move_to_end(key)
            return
        data[key] = [at, value]  # a new key goes to the end
        if len(data) > self.max_entries:
            data.popitem(last=False)
            self.evicted += 1

    def touch(self, key: str, at: float) -> None:
        item = self._data.get(key)
        if item is not None:
            item[0] = at
            self._data.move_to_end(key)

    def pop(self, key: str) -> Any | None:
        item = self._data.pop(key, None)
        return None if item is None else item[1]

    def items(self) -> Iterator[tuple[str, Any]]:
        for key, (_, value) in self._data.items():
            yield key, value

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def snapshot(self, encode: Callable[[Any], Any] | None = None) -> list[list[Any]]:
        if encode is None:
            return [[key, seen, value] for key, (seen, value) in self._data.items()]
        return [[key, seen, encode(value)] for key, (seen, value) in self._data.items()]

    def restore(self, rows: Any, decode: Callable[[Any], Any] | None = None) -> None:
        """The inverse of :meth:`snapshot`; rows of the wrong shape (and, with ``decode``, values it
        turns into ``None``) are skipped."""
        self._data.clear()
        if not isinstance(rows, list):
            return
        for row in rows[-self.max_entries :]:
            if (
                isinstance(row, list)
                and len(row) == 3
                and isinstance(row[0], str)
                and isinstance(row[1], int | float)
            ):
                value = row[2] if decode is None else decode(row[2])
                if decode is None or value is not None:
                    self._data[row[0]] = [float(row[1]), value]


_Getter = Callable[[Any], Any]


def _scalar_of(node: Any) -> Any | None:
    """What :func:`first` takes from the node at the end of a name: a scalar, or the first scalar of
    an array; ``None`` for an object or nothing."""
    if type(node) is list:
        node = next((v for v in node if v is not None and type(v) is not dict and type(v) is not list), None)
    return node if type(node) is not dict else None


def _getter(name: str) -> _Getter:
    """A compiled reader of dotted ``name`` through nested objects (the common depths unrolled: a
    detector reads a handful of fields of every event it sees)."""
    parts = tuple(name.split("."))
    if len(parts) == 1:
        (a,) = parts

        def get1(doc: Any) -> Any | None:
            node = doc.get(a) if type(doc) is dict else None
            if node is None or type(node) is dict:
                return None
            return node if type(node) is not list else _scalar_of(node)

        return get1
    if len(parts) == 2:
        a, b = parts

        def get2(doc: Any) -> Any | None:
            node = doc.get(a) if type(doc) is dict else None
            node = node.get(b) if type(node) is dict else None
            if node is None or type(node) is dict:
                return None
            return node if type(node) is not list else _scalar_of(node)

        return get2
    if len(parts) == 3:
        a, b, c = parts

        def get3(doc: Any) -> Any | None:
            node = doc.get(a) if type(doc) is dict else None
            node = node.get(b) if type(node) is dict else None
            node = node.get(c) if type(node) is dict else None
            if node is None or type(node) is dict:
                return None
            return node if type(node) is not list else _scalar_of(node)

        return get3

    def get(doc: Any) -> Any | None:
        node = doc
        for part in parts:
            node = node.get(part) if type(node) is dict else None
        return _scalar_of(node) if node is not None else None

    return get


def getter(*names: str) -> Callable[[dict[str, Any]], Any | None]:
    """The compiled form of ``first(doc, *names)``: bind it once (module or instance attribute) and
    call it per event — no argument tuple to build and hash, one call less."""
    get = _FIRSTS.get(names)
    return get if get is not None else _first_of(names)


def first(doc: dict[str, Any], *names: str) -> Any | None:
    """The scalar at the first of ``names`` present in ``doc`` (nested objects, as every source writes
    them — detectors run on pipeline documents; the Sigma matcher also reads flat dotted keys); the
    first element of an array of scalars."""
    get = _FIRSTS.get(names)
    if get is None:
        get = _first_of(names)
    return get(doc)


_FIRSTS: dict[tuple[str, ...], _Getter] = {}


def _first_of(names: tuple[str, ...]) -> _Getter:
    getters = tuple(_getter(n) for n in names)
    if len(getters) == 1:
        get = getters[0]
    else:

        def get(doc: Any) -> Any | None:
            for one in getters:
                value = one(doc)
                if value is not None:
                    return value
            return None

    if len(_FIRSTS) >= 4096:  # names come from code and options: a few dozen
        _FIRSTS.clear()
    _FIRSTS[names] = get
    return get


def peer_key(doc: dict[str, Any]) -> str | None:
    value = first(doc, "wireguard.peer.public_key")
    return str(value) if value is not None else None


def user_key(doc: dict[str, Any]) -> tuple[str, str] | None:
    """Whose activity this is: ``user.name`` when identity enrichment knows it, else the peer key."""
    name = first(doc, "user.name")
    if name is not None:
        return "user.name", str(name)
    key = peer_key(doc)
    return ("wireguard.peer.public_key", key) if key is not None else None


_WKT = re.compile(r"^\s*POINT\s*\(\s*(-?[\d.]+(?:[eE]-?\d+)?)\s+(-?[\d.]+(?:[eE]-?\d+)?)\s*\)\s*$", re.I)


def location(doc: dict[str, Any], side: str = "source") -> list[float] | None:
    """``[lat, lon]`` of ``<side>.geo.location``, written as WKT ``POINT (lon lat)`` (enrich_geo's
    default) or as an object ``{lat, lon}``."""
    part = doc.get(side)
    geo = part.get("geo") if type(part) is dict else None
    loc = geo.get("location") if type(geo) is dict else None
    if type(loc) is dict:
        lat, lon = loc.get("lat"), loc.get("lon")
        if isinstance(lat, int | float) and isinstance(lon, int | float):
            return [float(lat), float(lon)]
        return None
    if type(loc) is str:
        point = _POINTS.get(loc)
        if point is None:
            m = _WKT.match(loc)
            if m is None:
                return None
            if len(_POINTS) >= 4096:  # places repeat (city-level geo): a small cache of parsed points
                _POINTS.clear()
            point = _POINTS[loc] = (float(m.group(2)), float(m.group(1)))
        return [point[0], point[1]]  # a fresh list: callers keep it in their state
    return None


_POINTS: dict[str, tuple[float, float]] = {}


def geo_distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


_UTC_KEYS = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu"})
"""``zoneinfo`` keys of UTC itself (offset 0 at every instant): the detectors' default ``timezone``."""


def hour_of_week(at: float, tz: dt.tzinfo = dt.UTC) -> int:
    """0 = Monday 00:00–00:59 … 167 = Sunday 23:00–23:59, in ``tz``."""
    if (tz is dt.UTC or getattr(tz, "key", None) in _UTC_KEYS) and at == int(at):
        hours = int(at) // 3600  # whole seconds in UTC: arithmetic (1970-01-01 was a Thursday)
        return ((hours // 24 + 3) % 7) * 24 + hours % 24
    t = dt.datetime.fromtimestamp(at, tz)
    return t.weekday() * 24 + t.hour

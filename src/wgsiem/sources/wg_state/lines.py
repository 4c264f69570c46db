"""Change → its NDJSON line, byte for byte ``encode_document(to_ecs(change, …))``, from byte templates.

Why: a replay of a busy week is ~3 million ``transfer`` and ``handshake`` events, and building each
document as a tree of dicts and serializing it costs more than everything else the replay does. Within
one peer configuration, interface and action, those documents differ only in a dozen values (id,
times, counters, session id, transfer sizes): everything else is the same bytes every time. So the
first document of such a *shape* is built the ordinary way (:func:`to_ecs`), its variable values are
replaced by unique placeholders, it is serialized once with the sink's own options and cut at the
placeholders; every later event of that shape is the cut pieces joined with its values. A template is
only used when every placeholder occurs exactly once; any other action, an odd value (a counter past
63 bits), or a shape whose template cannot be cut falls back to ``encode_document(to_ecs(…))``.

The values filled in never need JSON escaping: lowercase hex ids, RFC 3339 times and decimal numbers.
``tests/sources/wg_state/test_lines.py`` holds the equality on every action and shape, including
property tests over arbitrary peers and counters.
"""

from __future__ import annotations

import functools
from operator import itemgetter
from typing import Any

import orjson

from wgsiem.sinks.ndjson.encoder import EncodeError, encode_document
from wgsiem.sources.wg_state.differ import Change
from wgsiem.sources.wg_state.normalize import iso, to_ecs
from wgsiem.sources.wg_state.records import InterfaceRecord

__all__ = ["LineEncoder"]

_MAX_INT = (1 << 63) - 1  # the filled ints stay within what orjson writes the same way as str()
_TEMPLATES_MAX = 1 << 14
_MARK = "\ue000wgsiem-slot-"  # a private-use character: never in a key, an address or a hostname

# slot → (path in the document, is it a JSON string)
_SLOTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "id": (("event", "id"), True),
    "created": (("event", "created"), True),
    "ts": (("@timestamp",), True),
    "rx": (("wireguard", "peer", "rx_bytes"), False),
    "tx": (("wireguard", "peer", "tx_bytes"), False),
    "hs": (("wireguard", "peer", "latest_handshake"), True),
    "sid": (("wireguard", "session", "id"), True),
    "trx": (("wireguard", "transfer", "rx_bytes"), False),
    "ttx": (("wireguard", "transfer", "tx_bytes"), False),
    "ival": (("wireguard", "transfer", "interval_secs"), False),
    "sb": (("source", "bytes"), False),
    "db": (("destination", "bytes"), False),
    "nb": (("network", "bytes"), False),
}
_INT_SLOTS = frozenset(("rx", "tx", "trx", "ttx", "sb", "db", "nb"))
_ACTION_SLOTS = {
    "handshake": ("id", "created", "ts", "rx", "tx", "hs", "sid"),
    "transfer": ("id", "created", "ts", "rx", "tx", "hs", "sid", "trx", "ttx", "ival", "sb", "db", "nb"),
}


@functools.lru_cache(maxsize=8192)
def _iso_bytes(t: float) -> bytes:
    return iso(t).encode()


class _Template:
    """The serialized document cut at its slots, as a ``bytes %`` format: ``fmt % values`` with the
    values in slot order (``pick`` takes them from the action's value list); ``%d`` for a counter
    (Python's and orjson's decimal ints are the same), ``%s`` for the bytes of anything else."""

    __slots__ = ("fmt", "pick")

    def __init__(self, pieces: list[bytes], order: list[int], specs: list[bytes]) -> None:
        fmt = [pieces[0].replace(b"%", b"%%")]
        for spec, piece in zip(specs, pieces[1:], strict=True):
            fmt.append(spec)
            fmt.append(piece.replace(b"%", b"%%"))
        self.fmt = b"".join(fmt)
        self.pick = itemgetter(*order) if len(order) > 1 else (lambda v: (v[order[0]],))

    def fill(self, values: list[Any]) -> bytes:
        return self.fmt % self.pick(values)


def _cut(doc: dict[str, Any], slots: tuple[str, ...]) -> _Template | None:
    """``doc`` with each present slot replaced by a placeholder, serialized and cut; None if a slot's
    path is missing where the shape says it is present, or a placeholder is not found exactly once."""
    marks: list[tuple[bytes, int]] = []
    for n, slot in enumerate(slots):
        path, is_str = _SLOTS[slot]
        parent: Any = doc
        for k in path[:-1]:
            parent = parent.get(k) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or path[-1] not in parent:
            continue  # absent in this shape (no handshake yet, no session)
        mark = f"{_MARK}{n}\ue001"
        parent[path[-1]] = mark
        enc = mark.encode()
        marks.append((enc if is_str else b'"' + enc + b'"', n))
    data = encode_document(doc)
    found: list[tuple[int, bytes, int]] = []
    for enc, n in marks:
        at = data.find(enc)
        if at < 0 or data.find(enc, at + 1) >= 0:
            return None
        found.append((at, enc, n))
    found.sort()
    pieces: list[bytes] = []
    order: list[int] = []
    specs: list[bytes] = []
    pos = 0
    for at, enc, n in found:
        pieces.append(data[pos:at])
        order.append(n)
        specs.append(b"%d" if slots[n] in _INT_SLOTS else b"%s")
        pos = at + len(enc)
    pieces.append(data[pos:])
    if _MARK.encode() in b"".join(pieces):
        return None
    return _Template(pieces, order, specs)


_UNSEEN: Any = object()


class LineEncoder:
    """NDJSON lines of one source's changes (``hostname`` is the documents' ``observer.hostname``)."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self._templates: dict[tuple[Any, ...], _Template | None] = {}  # None: no template possible
        self.templated = 0
        self._info: InterfaceRecord | None = None
        self._info_key: tuple[Any, ...] = ()
        self.fallbacks = 0
        self.unencodable = 0

    def lines(self, changes: list[Change], at: float) -> list[Any]:
        """The lines of ``changes`` observed at ``at`` (a poll's time), in order; an event JSON cannot
        express (see :class:`EncodeError`) is its document instead (``unencodable`` counts them)."""
        created = _iso_bytes(at)
        line = self._line
        return [line(c, at, created) for c in changes]

    def line(self, change: Change, at: float) -> Any:
        return self._line(change, at, _iso_bytes(at))

    def _line(self, c: Change, at: float, created: bytes) -> Any:
        action = c.action
        p = c.peer
        if p is None or (action != "transfer" and action != "handshake"):
            return self._fallback(c, at)
        det = c.details
        sid = det.get("session_id")
        info = c.interface
        if info is not self._info:  # one interface object for many events: its fields hashed once
            self._info = info
            self._info_key = (
                info.name,
                info.public_key,
                info.private_key_present,
                info.private_key_fingerprint,
                info.listen_port,
                info.fwmark,
            )
        key = (
            action,
            self._info_key,
            c.implementation,
            p.public_key,
            p.endpoint,
            p.allowed_ips,
            p.persistent_keepalive,
            p.preshared_key_present,
            p.preshared_key_fingerprint,
            p.latest_handshake != 0,
            bool(sid),
        )
        tpl = self._templates.get(key, _UNSEEN)
        if tpl is _UNSEEN:
            tpl = self._make(key, c, at)
        if tpl is None:
            return self._fallback(c, at)
        rx, tx = p.rx_bytes, p.tx_bytes
        if not (type(rx) is int and type(tx) is int and 0 <= rx <= _MAX_INT and 0 <= tx <= _MAX_INT):
            return self._fallback(c, at)
        values: list[Any] = [
            c.id.encode(),
            created,
            _iso_bytes(c.time),
            rx,
            tx,
            _iso_bytes(p.latest_handshake) if p.latest_handshake else b"",
            sid.encode() if sid else b"",
        ]
        if action != "handshake":  # transfer: the interval's deltas follow
            trx, ttx = det["rx_bytes"], det["tx_bytes"]
            if not (
                type(trx) is int and type(ttx) is int and trx >= 0 and ttx >= 0 and trx + ttx <= _MAX_INT
            ):
                return self._fallback(c, at)
            values += [trx, ttx, orjson.dumps(round(det["interval_secs"], 3)), trx, ttx, trx + ttx]
        self.templated += 1
        return tpl.fill(values)

    def _make(self, key: tuple[Any, ...], c: Change, at: float) -> _Template | None:
        if len(self._templates) >= _TEMPLATES_MAX:
            self._templates.clear()
        try:
            tpl = _cut(to_ecs(c, hostname=self.hostname, observed_at=at), _ACTION_SLOTS[c.action])
        except Exception:  # whatever stops a template stops only the template: the fallback decides
            tpl = None
        self._templates[key] = tpl
        return tpl

    def _fallback(self, c: Change, at: float) -> Any:
        self.fallbacks += 1
        doc = to_ecs(c, hostname=self.hostname, observed_at=at)
        try:
            return encode_document(doc)
        except EncodeError:
            # not JSON (an int past 64 bits): the document itself, for the sinks to count and drop
            self.unencodable += 1
            return doc

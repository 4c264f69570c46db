"""Successive snapshots → state changes (peer added/removed, roaming, sessions, transfer, resets, …).

Design:
* Raw-record diff: each peer's raw dump line / UAPI block is hashed and compared with the previous
  poll's; only changed peers are parsed. With 1% of 100k peers changing, a poll parses 1k records.
* Sessions follow the protocol: a session starts at a handshake and ends once the latest handshake is
  older than ``session_timeout_secs`` (REJECT_AFTER_TIME, 180 s) plus ``session_grace_secs``. A session
  only (re)starts on a *newer* handshake than the one it ended with, so it cannot flap on poll jitter;
  a gap between two observed handshakes longer than the timeout closes the old session and opens a new
  one, even if that gap was spent with wgsiem stopped.
* Counters never go negative: a decrease is a ``counter-reset`` and the delta is the new value.
* A changed dump line whose columns other than the counters (latest handshake, rx, tx) are those of the
  line last parsed for that peer is not parsed again: its three ints go through :meth:`Differ._diff_counters`
  (the common case — bytes moved, no reset, no new handshake — inline in the poll loop), and the peer's
  record with the new counters is built only when an event or a view needs it (``_Peer.rec``). On a busy
  gateway that is almost every changed line; the events are the very ones a full parse gives (a property
  test in ``tests/replay/test_replay_golden.py`` holds that).
* Transfers due in a poll come off a heap keyed by when their bytes started pending, in that order (ties
  in the order the bytes were seen), instead of a scan of every pending peer; a ``set`` scan also emitted
  them in an order that changed with ``PYTHONHASHSEED``.
* State is exported/restored (``export_state``/``restore_state``) so a restart neither invents session
  starts nor loses ends. Persisted state holds public data only: never a private or preshared key.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field, fields
from itertools import compress
from operator import ne, not_
from typing import Any

from wgsiem.event import event_id, event_id_from, event_id_prefix
from wgsiem.sources.wg_state.dump_parser import parse_dump_peer
from wgsiem.sources.wg_state.records import (
    Fingerprinter,
    InterfaceRecord,
    PeerRecord,
    Snapshot,
    SnapshotInterface,
    record_keys,
)
from wgsiem.sources.wg_state.uapi_parser import parse_uapi_peer

__all__ = ["Change", "DiffSettings", "Differ", "DifferStats"]

MAX_SESSION_ENDPOINTS = 16
# per-peer fields persisted across restarts, in file order (after the public record fields)
_PERSISTED = (
    "first_seen",
    "last_seen",
    "last_activity",
    "session_id",
    "session_start",
    "session_hs",
    "session_rx",
    "session_tx",
    "session_endpoints",
    "session_observed_start",
    "pending_rx",
    "pending_tx",
    "pending_since",
)
STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class DiffSettings:
    session_timeout_secs: float = 180.0
    session_grace_secs: float = 15.0
    transfer_interval_secs: float = 60.0
    forget_interface_after_secs: float = 86400.0

    @property
    def session_expiry_secs(self) -> float:
        return self.session_timeout_secs + self.session_grace_secs


@dataclass(frozen=True, slots=True)
class Change:
    """One derived change. ``details`` holds the action-specific facts; ``id`` is deterministic."""

    action: str
    time: float
    interface: InterfaceRecord
    implementation: str
    peer: PeerRecord | None
    details: dict[str, Any]
    id: str


_CSET = [getattr(Change, f.name).__set__ for f in fields(Change)]
assert [f.name for f in fields(Change)] == [
    "action",
    "time",
    "interface",
    "implementation",
    "peer",
    "details",
    "id",
]
_c_action, _c_time, _c_interface, _c_impl, _c_peer, _c_details, _c_id = _CSET
_SEQ_STRIDE = 1 << 32  # more than any interface's peer lines: see Differ._seq_base
_ID_PREFIXES_MAX = 1 << 15  # ~0.5 KB each (a BLAKE2b state): at most ~18 MB


def _new_change(
    action: str,
    t: float,
    interface: InterfaceRecord,
    implementation: str,
    peer: PeerRecord | None,
    details: dict[str, Any],
    id_: str,
) -> Change:
    """``Change(...)`` without the frozen dataclass's per-field ``object.__setattr__`` (hot path)."""
    c = object.__new__(Change)
    _c_action(c, action)
    _c_time(c, t)
    _c_interface(c, interface)
    _c_impl(c, implementation)
    _c_peer(c, peer)
    _c_details(c, details)
    _c_id(c, id_)
    return c


@dataclass(slots=True)
class DifferStats:
    peers_parsed: int = 0
    peers_unchanged: int = 0
    parse_errors: int = 0
    errors: list[str] = field(default_factory=list)


class _Peer:
    """Per-peer state. The record's counters live in ``hs``/``rx``/``tx``: a poll whose line changed
    only in its counters (most polls of a busy peer) updates those three ints and builds no record;
    :attr:`rec` builds one, once, when something asks for it (an event, a view, the state file)."""

    __slots__ = (
        "_rec",
        "first_seen",
        "head",
        "hs",
        "last_activity",
        "last_seen",
        "order",
        "pending_rx",
        "pending_seq",
        "pending_since",
        "pending_tx",
        "rx",
        "session_endpoints",
        "session_hs",
        "session_id",
        "session_observed_start",
        "session_rx",
        "session_start",
        "session_tx",
        "tail",
        "tx",
    )

    def __init__(self, rec: PeerRecord, now: float) -> None:
        self._rec = rec
        self.hs = rec.latest_handshake
        self.rx = rec.rx_bytes
        self.tx = rec.tx_bytes
        # the raw dump line's columns 0-4 and 8 (all but the counters) the record was parsed from
        self.head: bytes | None = None
        self.tail: bytes | None = None
        self.first_seen = now
        self.last_seen = now
        self.last_activity = float(rec.latest_handshake)
        self.session_id: str | None = None
        self.session_start = 0.0
        self.session_hs = 0
        self.session_rx = 0
        self.session_tx = 0
        self.session_endpoints: list[str] = []
        self.session_observed_start = True
        self.pending_rx = 0
        self.pending_tx = 0
        self.pending_since = now
        self.pending_seq = 0  # the live entry of Differ._transfers for this peer (0: none)
        self.order = 0  # when it was added (Differ's sequence): its place in its interface's ``peers``

    @property
    def rec(self) -> PeerRecord:
        r = self._rec
        if r.latest_handshake != self.hs or r.rx_bytes != self.rx or r.tx_bytes != self.tx:
            r = _with_counters(r, self.hs, self.rx, self.tx)
            self._rec = r
        return r

    @rec.setter
    def rec(self, r: PeerRecord) -> None:
        self._rec = r
        self.hs = r.latest_handshake
        self.rx = r.rx_bytes
        self.tx = r.tx_bytes


_SET = {f: getattr(PeerRecord, f).__set__ for f in PeerRecord.__slots__}
assert tuple(_SET) == tuple(f.name for f in fields(PeerRecord))  # every field is set below
_set_iface, _set_pub, _set_psk, _set_psk_fp, _set_ep, _set_allowed, _set_hs, _set_rx, _set_tx, _set_ka = (
    _SET.values()
)


def _with_counters(r: PeerRecord, hs: int, rx: int, tx: int) -> PeerRecord:
    """``dataclasses.replace(r, latest_handshake=hs, rx_bytes=rx, tx_bytes=tx)``, several times faster:
    a frozen dataclass's ``__init__`` goes through ``object.__setattr__`` for every field."""
    o = object.__new__(PeerRecord)
    _set_iface(o, r.interface)
    _set_pub(o, r.public_key)
    _set_psk(o, r.preshared_key_present)
    _set_psk_fp(o, r.preshared_key_fingerprint)
    _set_ep(o, r.endpoint)
    _set_allowed(o, r.allowed_ips)
    _set_hs(o, hs)
    _set_rx(o, rx)
    _set_tx(o, tx)
    _set_ka(o, r.persistent_keepalive)
    return o


class _Iface:
    __slots__ = (
        "gone_since",
        "hashes",
        "implementation",
        "info",
        "peer_format",
        "peers",
        "records",
        "strays",
    )

    def __init__(self, info: InterfaceRecord, implementation: str, peer_format: str) -> None:
        self.info = info
        self.implementation = implementation
        self.peer_format = peer_format
        self.peers: dict[bytes, _Peer] = {}
        self.gone_since: float | None = None
        # hashes of the raw records of the previous poll: a record whose hash is here is unchanged;
        # None while only ``records`` (the previous poll's record list) is kept, see _changed_records
        self.hashes: set[int] | None = set()
        self.records: list[bytes] = []
        # records of the last snapshot that are no peer (an unparseable line of an unknown key, a key
        # twice): while there are any, counting records no longer shows that a peer went away
        self.strays = 0


def _changed_records(iface: _Iface, si: SnapshotInterface) -> tuple[list[bytes], list[int]]:
    """The raw records that differ from every record of the previous poll, in snapshot order, and
    their positions in ``si.records``.

    The hot path of a poll, all C-level loops: hash every raw record and keep those whose hash the
    previous poll did not see. When the reader vouches that the snapshot holds the previous poll's
    peers in the same order (``si.previous`` is the record list this interface was last diffed
    with: a replayed delta), the same records are found position by position, without hashing and
    building a set of every line of every poll; the hashes are then computed only if a later poll
    needs them."""
    records = si.records
    prev = iface.records
    iface.records = records
    if si.previous is not None and si.previous is prev and len(prev) == len(records):
        iface.hashes = None
        selected = list(map(ne, records, prev))
    else:
        known = iface.hashes if iface.hashes is not None else set(map(hash, prev))
        hashes = list(map(hash, records))
        iface.hashes = set(hashes)
        selected = list(map(not_, map(known.__contains__, hashes)))
    return list(compress(records, selected)), list(compress(range(len(records)), selected))


def _b64_to_hex(key: str) -> bytes:
    import base64

    return base64.b64decode(key).hex().encode()


class Differ:
    """Keeps per-interface, per-peer state and turns each new snapshot into :class:`Change` records."""

    def __init__(
        self, fingerprinter: Fingerprinter, settings: DiffSettings | None = None, host: str = ""
    ) -> None:
        self.fp = fingerprinter
        self.settings = settings or DiffSettings()
        self.host = host
        self.ifaces: dict[str, _Iface] = {}
        # (expiry time, interface, raw key, session id): lazily invalidated
        self._expiry: list[tuple[float, str, bytes, str]] = []
        # (pending since, entry number, interface, raw key): a peer with bytes not yet reported as a
        # transfer; an entry is live while its number is the peer's ``pending_seq``. The heap hands
        # out due transfers oldest first without looking at the peers that are not due.
        self._transfers: list[tuple[float, int, str, bytes]] = []
        # The entry numbers (and peers' ``order``) follow the order the differ processes things in:
        # ``_seq_base`` + the line's position in the snapshot, the base moving by _SEQ_STRIDE for every
        # interface of every poll (a plain counter while restoring). A peer's numbers are then the same
        # whichever other peers a differ sees — what lets the replay split the peers over several
        # differs and merge their events exactly (``marks``, :mod:`wgsiem.sources.wg_state.shard`).
        self._seq = 0
        self._seq_base = 0
        self._cur_seq = 0  # the number of the line being diffed
        # When a list: (index into the update's output, merge key) where each group of events starts;
        # a group is the events of one line, one removed peer, one expired session, one transfer
        # (see :mod:`wgsiem.sources.wg_state.shard`). None (live): not kept.
        self.marks: list[tuple[int, tuple[Any, ...]]] | None = None
        self._id_prefixes: dict[tuple[str, str, str, str], Any] = {}
        self.stats = DifferStats()
        self.initialized = False
        self._last_poll: float | None = None

    # ---------------------------------------------------------------- helpers
    def _change(
        self,
        out: list[Change],
        action: str,
        t: float,
        iface: _Iface,
        peer: PeerRecord | None,
        details: dict[str, Any],
        *id_parts: object,
    ) -> None:
        pk = peer.public_key if peer else ""
        info = iface.info
        # event_id(host, dataset, action, interface, key, *id_parts): the first five are hashed once
        ck = (self.host, action, info.name, pk)
        prefix = self._id_prefixes.get(ck)
        if prefix is None:
            if len(self._id_prefixes) >= _ID_PREFIXES_MAX:
                self._id_prefixes.clear()
            prefix = event_id_prefix(self.host, "wireguard.state", action, info.name, pk)
            self._id_prefixes[ck] = prefix
        out.append(
            _new_change(
                action, t, info, iface.implementation, peer, details, event_id_from(prefix, *id_parts)
            )
        )

    def _parse(self, si: SnapshotInterface, raw: bytes) -> PeerRecord:
        if si.peer_format == "uapi":
            return parse_uapi_peer(si.info.name, raw, self.fp)
        return parse_dump_peer(raw, self.fp)

    def _rekey(self, iface: _Iface, fmt: str) -> None:
        """Re-key restored state when the reader format changed (hex UAPI keys ↔ base64 dump keys)."""
        if iface.peer_format == fmt:
            return
        renamed: dict[bytes, bytes] = {}
        new: dict[bytes, _Peer] = {}
        for old_key, st in iface.peers.items():
            key = _b64_to_hex(st.rec.public_key) if fmt == "uapi" else st.rec.public_key.encode()
            renamed[old_key] = key
            new[key] = st
            st.head = None  # the next record is parsed in full: the counter fast path is for dump lines
        iface.peers = new
        iface.peer_format = fmt
        iface.hashes = set()  # re-parse everything once in the new format
        iface.records = []
        name = iface.info.name
        # session deadlines and pending transfers refer to peers by key: follow the rename
        self._expiry = [(d, n, renamed.get(k, k) if n == name else k, sid) for d, n, k, sid in self._expiry]
        heapq.heapify(self._expiry)
        self._transfers = [(t, q, n, renamed.get(k, k) if n == name else k) for t, q, n, k in self._transfers]
        heapq.heapify(self._transfers)

    # ---------------------------------------------------------------- sessions
    def _start_session(
        self, out: list[Change], iface: _Iface, key: bytes, st: _Peer, rec: PeerRecord, observed: bool
    ) -> None:
        hs = rec.latest_handshake
        sid = event_id(self.host, iface.info.name, rec.public_key, "session", hs)
        st.session_id = sid
        st.session_start = float(hs)
        st.session_hs = hs
        st.session_rx = 0
        st.session_tx = 0
        st.session_endpoints = [rec.endpoint] if rec.endpoint else []
        st.session_observed_start = observed
        st.last_activity = max(st.last_activity, float(hs))
        heapq.heappush(self._expiry, (hs + self.settings.session_expiry_secs, iface.info.name, key, sid))
        self._change(
            out,
            "session-started",
            float(hs),
            iface,
            rec,
            {"session_id": sid, "observed_start": observed},
            sid,
        )

    def _end_session(
        self, out: list[Change], iface: _Iface, key: bytes, st: _Peer, reason: str, now: float
    ) -> None:
        if st.session_id is None:
            return
        self._flush_transfer(out, iface, key, st, now)
        end = max(st.last_activity, st.session_start)
        sid = st.session_id
        self._change(
            out,
            "session-ended",
            end,
            iface,
            st.rec,
            {
                "session_id": sid,
                "start": st.session_start,
                "end": end,
                "duration_secs": end - st.session_start,
                "rx_bytes": st.session_rx,
                "tx_bytes": st.session_tx,
                "endpoints": list(st.session_endpoints),
                "end_reason": reason,
                "observed_start": st.session_observed_start,
            },
            sid,
            "end",
        )
        st.session_id = None

    def _flush_transfer(self, out: list[Change], iface: _Iface, key: bytes, st: _Peer, now: float) -> None:
        st.pending_seq = 0
        if st.pending_rx == 0 and st.pending_tx == 0:
            st.pending_since = now
            return
        rec = st.rec
        self._change(
            out,
            "transfer",
            now,
            iface,
            rec,
            {
                "rx_bytes": st.pending_rx,
                "tx_bytes": st.pending_tx,
                "interval_secs": max(0.0, now - st.pending_since),
                "session_id": st.session_id,
            },
            rec.rx_bytes,
            rec.tx_bytes,
            st.pending_rx,
            st.pending_tx,
            now,
        )
        st.pending_rx = 0
        st.pending_tx = 0
        st.pending_since = now

    # ---------------------------------------------------------------- main entry
    def update(self, snap: Snapshot) -> list[Change]:
        """Diff one snapshot against the state; returns the changes in a stable order."""
        now = snap.taken_at
        out: list[Change] = []
        marks = self.marks
        for idx, (name, si) in enumerate(snap.interfaces.items()):
            if marks is not None:
                marks.append((len(out), (0, idx, 0, 0)))
            iface = self.ifaces.get(name)
            if iface is None:
                iface = _Iface(si.info, si.implementation, si.peer_format)
                self.ifaces[name] = iface
                self._change(out, "interface-added", now, iface, None, {"peer_count": si.peer_count}, now)
                initial = True
            else:
                initial = False
                self._rekey(iface, si.peer_format)
                iface.implementation = si.implementation
                if iface.gone_since is not None:
                    iface.info = si.info
                    self._change(out, "interface-added", now, iface, None, {"peer_count": si.peer_count}, now)
                    iface.gone_since = None
                self._diff_interface(out, iface, si.info, now)
            self._diff_peers(out, iface, si, now, initial and not self.initialized, idx)
        for idx, (name, iface) in enumerate(list(self.ifaces.items())):
            if name in snap.interfaces:
                continue
            if iface.gone_since is None:
                iface.gone_since = now
                for key, st in iface.peers.items():
                    if marks is not None:
                        marks.append((len(out), (1, idx, 0, st.order)))
                    self._end_session(out, iface, key, st, "interface-removed", now)
                if marks is not None:
                    marks.append((len(out), (1, idx, 1, 0)))
                self._change(
                    out, "interface-removed", now, iface, None, {"peer_count": len(iface.peers)}, now
                )
            elif now - iface.gone_since > self.settings.forget_interface_after_secs:
                del self.ifaces[name]
        self._expire_sessions(out, now)
        self._due_transfers(out, now)
        self.initialized = True
        self._last_poll = now
        return out

    def _diff_interface(self, out: list[Change], iface: _Iface, new: InterfaceRecord, now: float) -> None:
        old = iface.info
        if old == new:
            return
        iface.info = new
        if old.public_key != new.public_key or old.private_key_fingerprint != new.private_key_fingerprint:
            self._change(
                out,
                "interface-key-changed",
                now,
                iface,
                None,
                {"old_public_key": old.public_key, "new_public_key": new.public_key},
                old.public_key,
                new.public_key,
                new.private_key_fingerprint,
            )
        if old.listen_port != new.listen_port or old.fwmark != new.fwmark:
            self._change(
                out,
                "interface-changed",
                now,
                iface,
                None,
                {
                    "old_listen_port": old.listen_port,
                    "new_listen_port": new.listen_port,
                    "old_fwmark": old.fwmark,
                    "new_fwmark": new.fwmark,
                },
                now,
                new.listen_port,
                new.fwmark,
            )

    def _diff_peers(
        self, out: list[Change], iface: _Iface, si: SnapshotInterface, now: float, initial: bool, idx: int
    ) -> None:
        stats = self.stats
        peers = iface.peers
        failed_new = 0
        expiry = self.settings.session_expiry_secs
        get = peers.get
        records = si.records
        changed, positions = _changed_records(iface, si)
        if si.positions is not None:  # a shard of the snapshot: the lines' places in the whole one
            positions = list(map(si.positions.__getitem__, positions))
        stats.peers_unchanged += len(records) - len(changed)
        dump = si.peer_format == "dump"
        last_poll = self._last_poll if self._last_poll is not None else now
        name = iface.info.name
        base = self._seq_base = self._seq_base + _SEQ_STRIDE
        marks = self.marks
        for key, raw, pos in zip(record_keys(si.peer_format, changed), changed, positions, strict=True):
            st = get(key)
            if dump:
                # head = columns 0-4 (interface, keys, endpoint, allowed IPs), tail = keepalive
                cols = raw.rsplit(b"\t", 4)
                if st is not None and cols[0] == st.head and len(cols) == 5 and cols[4] == st.tail:
                    # Only the counters changed (most polls of a busy peer): what parsing the line
                    # would give, without parsing what the previous line already said.
                    try:
                        hs, rx, tx = int(cols[1]), int(cols[2]), int(cols[3])
                    except ValueError:
                        hs = rx = tx = -1  # the full parse below reports it
                    if hs >= 0 and rx >= 0 and tx >= 0:
                        stats.peers_parsed += 1
                        d_rx = rx - st.rx
                        d_tx = tx - st.tx
                        if (
                            d_rx < 0
                            or d_tx < 0
                            or (hs > st.hs and hs != 0)
                            or (st.session_id is not None and st._rec.endpoint not in st.session_endpoints)
                        ):
                            self._cur_seq = base + pos
                            if marks is not None:
                                marks.append((len(out), (0, idx, 1, pos)))
                            self._diff_counters(out, iface, key, st, hs, rx, tx, now)
                            continue
                        # the common case, inline: bytes moved (or not), no reset, no new handshake
                        st.last_seen = now
                        st.hs, st.rx, st.tx = hs, rx, tx
                        if d_rx or d_tx:
                            if now > st.last_activity:
                                st.last_activity = now
                            if st.session_id is not None:
                                st.session_rx += d_rx
                                st.session_tx += d_tx
                            if st.pending_rx == 0 and st.pending_tx == 0:
                                st.pending_since = last_poll
                                self._pend(name, key, st, base + pos)
                            st.pending_rx += d_rx
                            st.pending_tx += d_tx
                        continue
            self._cur_seq = base + pos
            if marks is not None:
                marks.append((len(out), (0, idx, 1, pos)))
            try:
                rec = self._parse(si, raw)
            except (ValueError, UnicodeDecodeError, IndexError) as exc:
                stats.parse_errors += 1
                stats.errors.append(f"{si.info.name}: bad peer record skipped: {type(exc).__name__}")
                if st is None:
                    failed_new += 1
                continue
            stats.peers_parsed += 1
            if st is None:
                st = _Peer(rec, now)
                st.order = base + pos
                peers[key] = st
                self._change(
                    out, "peer-added", now, iface, rec, {"initial_sync": initial}, rec.public_key, now
                )
                if rec.latest_handshake and now - rec.latest_handshake <= expiry:
                    self._start_session(out, iface, key, st, rec, observed=not initial)
                if (rec.rx_bytes or rec.tx_bytes) and not initial:
                    # a peer added live starts from zero: what it has now was moved since it was added
                    st.last_activity = now
                    if st.session_id is not None:
                        st.session_rx, st.session_tx = rec.rx_bytes, rec.tx_bytes
                    st.pending_rx, st.pending_tx = rec.rx_bytes, rec.tx_bytes
                    st.pending_since = self._last_poll if self._last_poll is not None else now
                    self._pend(iface.info.name, key, st, base + pos)
            else:
                self._diff_peer(out, iface, key, st, rec, now)
            if dump:
                st.head, st.tail = cols[0], cols[4]
        # Every snapshot peer is now in ``peers`` (bar unparseable new ones): any surplus was removed.
        # That count only holds while every record is a peer: once a poll had an unparseable new line
        # (which may stay, unchanged, in later snapshots) or a key twice, the keys are compared until
        # no such record is left — else a peer removed while one is there went unreported until it left.
        if iface.strays or failed_new or len(peers) > len(records):
            present = set(record_keys(si.peer_format, records))
            for key in [k for k in peers if k not in present]:
                st = peers.pop(key)
                if marks is not None:
                    marks.append((len(out), (0, idx, 2, st.order)))
                self._end_session(out, iface, key, st, "peer-removed", now)
                self._flush_transfer(out, iface, key, st, now)
                self._change(out, "peer-removed", now, iface, st.rec, {}, st.rec.public_key, now)
            iface.strays = len(records) - len(present) + sum(1 for k in present if k not in peers)

    def _diff_peer(
        self, out: list[Change], iface: _Iface, key: bytes, st: _Peer, rec: PeerRecord, now: float
    ) -> None:
        old = st.rec
        st.last_seen = now
        if old.allowed_ips != rec.allowed_ips:
            o, n = set(old.allowed_ips), set(rec.allowed_ips)
            self._change(
                out,
                "allowed-ips-changed",
                now,
                iface,
                rec,
                {
                    "old": list(old.allowed_ips),
                    "new": list(rec.allowed_ips),
                    "added": sorted(n - o),
                    "removed": sorted(o - n),
                },
                ",".join(old.allowed_ips),
                ",".join(rec.allowed_ips),
                now,
            )
        if old.preshared_key_fingerprint != rec.preshared_key_fingerprint:
            self._change(
                out,
                "preshared-key-changed",
                now,
                iface,
                rec,
                {"old_present": old.preshared_key_present, "new_present": rec.preshared_key_present},
                old.preshared_key_fingerprint,
                rec.preshared_key_fingerprint,
                now,
            )
        if old.endpoint != rec.endpoint and old.endpoint is not None:
            self._change(
                out,
                "endpoint-changed",
                now,
                iface,
                rec,
                {"old": old.endpoint, "new": rec.endpoint, "session_id": st.session_id},
                old.endpoint,
                rec.endpoint,
                now,
            )
        if (
            rec.endpoint
            and st.session_id is not None
            and rec.endpoint not in st.session_endpoints
            and len(st.session_endpoints) < MAX_SESSION_ENDPOINTS
        ):
            st.session_endpoints.append(rec.endpoint)

        # counters: never a negative delta
        reset = rec.rx_bytes < old.rx_bytes or rec.tx_bytes < old.tx_bytes
        if reset:
            self._change(
                out,
                "counter-reset",
                now,
                iface,
                rec,
                {
                    "old_rx_bytes": old.rx_bytes,
                    "old_tx_bytes": old.tx_bytes,
                    "new_rx_bytes": rec.rx_bytes,
                    "new_tx_bytes": rec.tx_bytes,
                },
                old.rx_bytes,
                old.tx_bytes,
                rec.rx_bytes,
                rec.tx_bytes,
                now,
            )
            d_rx, d_tx = rec.rx_bytes, rec.tx_bytes
            # the peer or its interface was recreated: its keypairs died with it, so does the session
            st.rec = rec
            self._end_session(out, iface, key, st, "counter-reset", now)
        else:
            d_rx, d_tx = rec.rx_bytes - old.rx_bytes, rec.tx_bytes - old.tx_bytes

        hs_new = rec.latest_handshake != 0 and (
            rec.latest_handshake > old.latest_handshake
            or (reset and rec.latest_handshake != old.latest_handshake)
        )
        expiry = self.settings.session_expiry_secs
        if hs_new:
            hs = rec.latest_handshake
            if st.session_id is not None and hs - st.session_hs > expiry:
                # the gap between two handshakes exceeds the timeout: the old session died in between
                self._end_session(out, iface, key, st, "expired", now)
            st.rec = rec
            self._change(out, "handshake", float(hs), iface, rec, {"session_id": st.session_id}, hs)
            if st.session_id is None:
                if now - hs <= expiry:
                    self._start_session(out, iface, key, st, rec, observed=True)
            else:
                st.session_hs = hs
                heapq.heappush(self._expiry, (hs + expiry, iface.info.name, key, st.session_id))
            st.last_activity = max(st.last_activity, float(hs))
        st.rec = rec
        if d_rx or d_tx:
            st.last_activity = max(st.last_activity, now)
            if st.session_id is not None:
                st.session_rx += d_rx
                st.session_tx += d_tx
            if st.pending_rx == 0 and st.pending_tx == 0:
                # the bytes arrived since the previous poll: the interval starts there
                st.pending_since = self._last_poll if self._last_poll is not None else now
                self._pend(iface.info.name, key, st, self._cur_seq)
            st.pending_rx += d_rx
            st.pending_tx += d_tx

    def _diff_counters(
        self, out: list[Change], iface: _Iface, key: bytes, st: _Peer, hs: int, rx: int, tx: int, now: float
    ) -> None:
        """:meth:`_diff_peer` for a line that differs from the previous one only in its counters
        (latest handshake, rx, tx): the same events, in the same order, from three ints."""
        st.last_seen = now
        endpoint = st._rec.endpoint
        if (
            endpoint
            and st.session_id is not None
            and endpoint not in st.session_endpoints
            and len(st.session_endpoints) < MAX_SESSION_ENDPOINTS
        ):
            st.session_endpoints.append(endpoint)
        old_hs, old_rx, old_tx = st.hs, st.rx, st.tx
        reset = rx < old_rx or tx < old_tx
        if reset:
            st.hs, st.rx, st.tx = hs, rx, tx
            self._change(
                out,
                "counter-reset",
                now,
                iface,
                st.rec,
                {"old_rx_bytes": old_rx, "old_tx_bytes": old_tx, "new_rx_bytes": rx, "new_tx_bytes": tx},
                old_rx,
                old_tx,
                rx,
                tx,
                now,
            )
            d_rx, d_tx = rx, tx
            self._end_session(out, iface, key, st, "counter-reset", now)
        else:
            d_rx, d_tx = rx - old_rx, tx - old_tx
        if hs != 0 and (hs > old_hs or (reset and hs != old_hs)):
            expiry = self.settings.session_expiry_secs
            if st.session_id is not None and hs - st.session_hs > expiry:
                # ended with the record as it was before this poll (as _diff_peer does)
                self._end_session(out, iface, key, st, "expired", now)
            st.hs, st.rx, st.tx = hs, rx, tx
            rec = st.rec
            self._change(out, "handshake", float(hs), iface, rec, {"session_id": st.session_id}, hs)
            if st.session_id is None:
                if now - hs <= expiry:
                    self._start_session(out, iface, key, st, rec, observed=True)
            else:
                st.session_hs = hs
                heapq.heappush(self._expiry, (hs + expiry, iface.info.name, key, st.session_id))
            if float(hs) > st.last_activity:
                st.last_activity = float(hs)
        st.hs, st.rx, st.tx = hs, rx, tx
        if d_rx or d_tx:
            if now > st.last_activity:
                st.last_activity = now
            if st.session_id is not None:
                st.session_rx += d_rx
                st.session_tx += d_tx
            if st.pending_rx == 0 and st.pending_tx == 0:
                st.pending_since = self._last_poll if self._last_poll is not None else now
                self._pend(iface.info.name, key, st, self._cur_seq)
            st.pending_rx += d_rx
            st.pending_tx += d_tx

    def _expire_sessions(self, out: list[Change], now: float) -> None:
        heap = self._expiry
        expiry = self.settings.session_expiry_secs
        due: list[tuple[float, str, bytes]] = []
        while heap and heap[0][0] < now:
            _, name, key, sid = heapq.heappop(heap)
            iface = self.ifaces.get(name)
            st = iface.peers.get(key) if iface is not None else None
            if st is None or st.session_id != sid:
                continue  # stale entry: the session already ended or was refreshed
            if now - st.session_hs > expiry:
                due.append((st.session_hs + expiry, name, key))
        # end in deadline order, independent of how the heap was built (live or restored)
        marks = self.marks
        for deadline, name, key in sorted(set(due)):
            if marks is not None:
                marks.append((len(out), (2, deadline, name, key)))
            iface = self.ifaces[name]
            self._end_session(out, iface, key, iface.peers[key], "expired", now)

    def _pend(self, name: str, key: bytes, st: _Peer, seq: int) -> None:
        """Queue the peer's transfer, due ``transfer_interval_secs`` after ``st.pending_since``; ``seq``
        orders transfers pending since the same time (see ``_seq_base``)."""
        st.pending_seq = seq
        heapq.heappush(self._transfers, (st.pending_since, seq, name, key))

    def _live_transfer(self, seq: int, name: str, key: bytes) -> tuple[_Iface, _Peer] | None:
        iface = self.ifaces.get(name)
        st = iface.peers.get(key) if iface is not None else None
        if iface is None or st is None or st.pending_seq != seq:
            return None  # flushed since, the peer or its interface is gone: a stale entry
        return iface, st

    def _due_transfers(self, out: list[Change], now: float) -> None:
        """Flush every transfer pending for ``transfer_interval_secs``, the longest-pending first
        (ties in the order the peers' bytes were first seen)."""
        interval = self.settings.transfer_interval_secs
        heap = self._transfers
        # ``now - since`` is monotonic in ``since``: the due entries are exactly the heap's smallest
        marks = self.marks
        while heap and now - heap[0][0] >= interval:
            since, seq, name, key = heapq.heappop(heap)
            live = self._live_transfer(seq, name, key)
            if live is not None:
                if marks is not None:
                    marks.append((len(out), (3, since, seq)))
                self._flush_transfer(out, live[0], key, live[1], now)

    def flush(self, now: float) -> list[Change]:
        """Emit every pending transfer delta (graceful stop): nothing counted is left unreported."""
        out: list[Change] = []
        marks = self.marks
        for since, seq, name, key in sorted(self._transfers):
            live = self._live_transfer(seq, name, key)
            if live is not None:
                if marks is not None:
                    marks.append((len(out), (3, since, seq)))
                self._flush_transfer(out, live[0], key, live[1], now)
        self._transfers.clear()
        return out

    # ---------------------------------------------------------------- persistence
    def export_state(self) -> dict[str, Any]:
        """Public state only: keys in base64 public form, secrets as presence + keyed fingerprint."""
        ifaces: dict[str, Any] = {}
        for name, iface in self.ifaces.items():
            i = iface.info
            peers = []
            for st in iface.peers.values():
                r = st.rec
                peers.append(
                    [
                        r.public_key,
                        r.preshared_key_present,
                        r.preshared_key_fingerprint,
                        r.endpoint,
                        list(r.allowed_ips),
                        r.latest_handshake,
                        r.rx_bytes,
                        r.tx_bytes,
                        r.persistent_keepalive,
                        *(getattr(st, f) for f in _PERSISTED),
                    ]
                )
            ifaces[name] = {
                "info": [
                    i.public_key,
                    i.private_key_present,
                    i.private_key_fingerprint,
                    i.listen_port,
                    i.fwmark,
                ],
                "implementation": iface.implementation,
                "gone_since": iface.gone_since,
                "peers": peers,
            }
        return {"version": STATE_VERSION, "interfaces": ifaces}

    def restore_state(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported state version {state.get('version')!r}")
        expiry = self.settings.session_expiry_secs
        for name, d in state["interfaces"].items():
            pub, priv_present, priv_fp, port, fwmark = d["info"]
            info = InterfaceRecord(name, pub, priv_present, priv_fp, port, fwmark)
            iface = _Iface(info, d.get("implementation", "unknown"), "dump")
            iface.gone_since = d.get("gone_since")
            for p in d["peers"]:
                rec = PeerRecord(name, p[0], p[1], p[2], p[3], tuple(p[4]), p[5], p[6], p[7], p[8])
                st = _Peer(rec, p[9])
                for f, v in zip(_PERSISTED, p[9:], strict=True):
                    setattr(st, f, v)
                key = rec.public_key.encode()
                self._seq += 1
                st.order = self._seq
                iface.peers[key] = st
                if st.session_id is not None:
                    heapq.heappush(self._expiry, (st.session_hs + expiry, name, key, st.session_id))
                if st.pending_rx or st.pending_tx:
                    self._pend(name, key, st, st.order)
            self.ifaces[name] = iface
        self.initialized = True

    def open_sessions(self) -> int:
        return sum(1 for i in self.ifaces.values() for p in i.peers.values() if p.session_id is not None)

    def peer_count(self) -> int:
        return sum(len(i.peers) for i in self.ifaces.values())

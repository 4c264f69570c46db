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
* State is exported/restored (``export_state``/``restore_state``) so a restart neither invents session
  starts nor loses ends. Persisted state holds public data only: never a private or preshared key.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from itertools import compress
from operator import not_
from typing import Any

from wgsiem.event import event_id
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


@dataclass(slots=True)
class DifferStats:
    peers_parsed: int = 0
    peers_unchanged: int = 0
    parse_errors: int = 0
    errors: list[str] = field(default_factory=list)


class _Peer:
    __slots__ = (
        "first_seen",
        "last_activity",
        "last_seen",
        "pending_rx",
        "pending_since",
        "pending_tx",
        "rec",
        "session_endpoints",
        "session_hs",
        "session_id",
        "session_observed_start",
        "session_rx",
        "session_start",
        "session_tx",
    )

    def __init__(self, rec: PeerRecord, now: float) -> None:
        self.rec = rec
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


class _Iface:
    __slots__ = ("gone_since", "hashes", "implementation", "info", "peer_format", "peers")

    def __init__(self, info: InterfaceRecord, implementation: str, peer_format: str) -> None:
        self.info = info
        self.implementation = implementation
        self.peer_format = peer_format
        self.peers: dict[bytes, _Peer] = {}
        self.gone_since: float | None = None
        # hashes of the raw records of the previous poll: a record whose hash is here is unchanged
        self.hashes: set[int] = set()


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
        self._pending: set[tuple[str, bytes]] = set()
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
        out.append(
            Change(
                action=action,
                time=t,
                interface=iface.info,
                implementation=iface.implementation,
                peer=peer,
                details=details,
                id=event_id(self.host, "wireguard.state", action, iface.info.name, pk, *id_parts),
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
        iface.peers = new
        iface.peer_format = fmt
        iface.hashes = set()  # re-parse everything once in the new format
        name = iface.info.name
        # session deadlines and pending transfers refer to peers by key: follow the rename
        self._expiry = [(d, n, renamed.get(k, k) if n == name else k, sid) for d, n, k, sid in self._expiry]
        heapq.heapify(self._expiry)
        self._pending = {(n, renamed.get(k, k) if n == name else k) for n, k in self._pending}

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
        if st.pending_rx == 0 and st.pending_tx == 0:
            self._pending.discard((iface.info.name, key))
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
        self._pending.discard((iface.info.name, key))

    # ---------------------------------------------------------------- main entry
    def update(self, snap: Snapshot) -> list[Change]:
        """Diff one snapshot against the state; returns the changes in a stable order."""
        now = snap.taken_at
        out: list[Change] = []
        for name, si in snap.interfaces.items():
            iface = self.ifaces.get(name)
            if iface is None:
                iface = _Iface(si.info, si.implementation, si.peer_format)
                self.ifaces[name] = iface
                self._change(out, "interface-added", now, iface, None, {"peer_count": len(si.records)}, now)
                initial = True
            else:
                initial = False
                self._rekey(iface, si.peer_format)
                iface.implementation = si.implementation
                if iface.gone_since is not None:
                    iface.info = si.info
                    self._change(
                        out, "interface-added", now, iface, None, {"peer_count": len(si.records)}, now
                    )
                    iface.gone_since = None
                self._diff_interface(out, iface, si.info, now)
            self._diff_peers(out, iface, si, now, initial and not self.initialized)
        for name, iface in list(self.ifaces.items()):
            if name in snap.interfaces:
                continue
            if iface.gone_since is None:
                iface.gone_since = now
                for key, st in iface.peers.items():
                    self._end_session(out, iface, key, st, "interface-removed", now)
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
        self, out: list[Change], iface: _Iface, si: SnapshotInterface, now: float, initial: bool
    ) -> None:
        stats = self.stats
        peers = iface.peers
        failed_new = 0
        expiry = self.settings.session_expiry_secs
        get = peers.get
        records = si.records
        # The hot path of a poll, all C-level loops: hash every raw record and keep those whose hash the
        # previous poll did not see. Only they are split into a key and parsed.
        hashes = list(map(hash, records))
        changed = list(compress(records, map(not_, map(iface.hashes.__contains__, hashes))))
        iface.hashes = set(hashes)
        stats.peers_unchanged += len(records) - len(changed)
        for key, raw in zip(record_keys(si.peer_format, changed), changed, strict=True):
            st = get(key)
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
                    self._pending.add((iface.info.name, key))
                continue
            self._diff_peer(out, iface, key, st, rec, now)
        # every snapshot peer is now in ``peers`` (bar unparseable new ones): any surplus was removed
        if len(peers) + failed_new > len(records):
            present = set(record_keys(si.peer_format, records))
            for key in [k for k in peers if k not in present]:
                st = peers.pop(key)
                self._end_session(out, iface, key, st, "peer-removed", now)
                self._flush_transfer(out, iface, key, st, now)
                self._change(out, "peer-removed", now, iface, st.rec, {}, st.rec.public_key, now)

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
            st.pending_rx += d_rx
            st.pending_tx += d_tx
            self._pending.add((iface.info.name, key))

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
        for _, name, key in sorted(set(due)):
            iface = self.ifaces[name]
            self._end_session(out, iface, key, iface.peers[key], "expired", now)

    def _due_transfers(self, out: list[Change], now: float) -> None:
        interval = self.settings.transfer_interval_secs
        for name, key in list(self._pending):
            iface = self.ifaces.get(name)
            st = iface.peers.get(key) if iface else None
            if iface is None or st is None:
                self._pending.discard((name, key))
                continue
            if now - st.pending_since >= interval:
                self._flush_transfer(out, iface, key, st, now)

    def flush(self, now: float) -> list[Change]:
        """Emit every pending transfer delta (graceful stop): nothing counted is left unreported."""
        out: list[Change] = []
        for name, key in list(self._pending):
            iface = self.ifaces.get(name)
            st = iface.peers.get(key) if iface else None
            if iface is not None and st is not None:
                self._flush_transfer(out, iface, key, st, now)
        self._pending.clear()
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
                iface.peers[key] = st
                if st.session_id is not None:
                    heapq.heappush(self._expiry, (st.session_hs + expiry, name, key, st.session_id))
                if st.pending_rx or st.pending_tx:
                    self._pending.add((name, key))
            self.ifaces[name] = iface
        self.initialized = True

    def open_sessions(self) -> int:
        return sum(1 for i in self.ifaces.values() for p in i.peers.values() if p.session_id is not None)

    def peer_count(self) -> int:
        return sum(len(i.peers) for i in self.ifaces.values())

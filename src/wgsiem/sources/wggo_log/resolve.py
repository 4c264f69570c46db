"""``peer(ABCD…wxyz)`` → a full public key, through the shared :class:`PeerDirectory`.

The abbreviation keeps 48 of a key's 256 bits, so two peers rarely share one; when they do on the same
interface the line is **ambiguous** and every candidate is reported. A peer the directory does not know
(no ``wg_state`` source, a peer removed since, another interface) is **unknown**.

Answers are cached until the directory publishes a new generation (each ``wg_state`` poll). A miss asks
:meth:`PeerDirectory.by_abbreviation`, which scans every peer; above ``INDEX_ABOVE`` peers the resolver
instead builds one ``(head, tail, interface) → peers`` index per generation, so a 100k-peer gateway
costs one pass per poll, not one per distinct peer seen in the log.
"""

from __future__ import annotations

from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo
from wgsiem.sources.wggo_log.normalize import PeerResolution

__all__ = ["INDEX_ABOVE", "PeerResolver"]

INDEX_ABOVE = 256
MAX_CANDIDATES = 8


class PeerResolver:
    def __init__(self, peers: PeerDirectory) -> None:
        self.peers = peers
        self._gen = -1
        self._cache: dict[tuple[str, str, str | None], PeerResolution] = {}
        self._index: dict[tuple[str, str], list[PeerInfo]] | None = None
        self.counts = {"resolved": 0, "ambiguous": 0, "unknown": 0}

    def _lookup(self, head: str, tail: str, interface: str | None) -> list[PeerInfo]:
        if self._index is None and len(self.peers) > INDEX_ABOVE:
            index: dict[tuple[str, str], list[PeerInfo]] = {}
            for p in self.peers.peers():
                index.setdefault((p.public_key[:4], p.public_key[39:43]), []).append(p)
            self._index = index
        if self._index is not None:
            found = self._index.get((head, tail), [])
            return [p for p in found if interface is None or p.interface == interface]
        # PeerDirectory.by_abbreviation compares ``endswith(tail)``, which a key's trailing "=" defeats;
        # asking with the "=" as well works whichever way the directory compares.
        found = self.peers.by_abbreviation(head, tail, interface) or self.peers.by_abbreviation(
            head, tail + "=", interface
        )
        return [p for p in found if p.public_key[:4] == head and p.public_key[39:43] == tail]

    def resolve(self, head: str, tail: str, interface: str | None) -> PeerResolution:
        if self.peers.generation != self._gen:
            self._gen = self.peers.generation
            self._cache.clear()
            self._index = None
        key = (head, tail, interface)
        hit = self._cache.get(key)
        if hit is None:
            found = self._lookup(head, tail, interface)
            keys = sorted({p.public_key for p in found})
            if len(keys) == 1:
                hit = ("resolved", keys[0], (), found[0].endpoint)
            elif keys:
                hit = ("ambiguous", None, tuple(keys[:MAX_CANDIDATES]), None)
            else:
                hit = ("unknown", None, (), None)
            self._cache[key] = hit
        self.counts[hit[0]] += 1
        return hit

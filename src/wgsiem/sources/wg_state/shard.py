"""One shard of the peers: what lets a replay diff the peers on several cores and merge exactly.

Why: diffing a week of 10-second captures of 1,000 peers is ~150 s of CPU in one process, most of it
per changed peer line. Peers are independent of each other in the differ — a peer's events depend on
its own lines, the poll times and the interface — so the replay can give each of N differs the lines
of one N-th of the peers (by a hash of the public key, stable across processes) and merge their events.

The merge is exact because every group of events the differ emits carries a key that orders it as the
single differ orders it (:attr:`Differ.marks <wgsiem.sources.wg_state.differ.Differ.marks>`), and
each shard emits its groups in key order:

* ``(0, interface index, 0, 0)``: the interface's own events of the poll (added, key or port changed);
* ``(0, interface index, 1, line position)``: one changed peer line — the position in the *whole*
  snapshot (:attr:`SnapshotInterface.positions`), not in the shard's part of it;
* ``(0, interface index, 2, peer order)``: a peer that left (in the order the peers were added);
* ``(1, interface index, 0, peer order)`` then ``(1, interface index, 1, 0)``: an interface that went
  away — its peers' sessions, then ``interface-removed``;
* ``(2, deadline, interface, key)``: an expired session;
* ``(3, pending since, entry number)``: a due transfer (entry numbers are line positions, see
  ``Differ._seq_base``: the same in every shard).

The interface's own events are the same in every shard: shard 0 keeps them, the others drop them —
except that ``interface-removed`` counts the interface's peers, each shard only its own: the other
shards report their counts (:func:`split_groups`) for the merge to add.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from itertools import chain, compress
from operator import itemgetter
from typing import Any

import orjson

from wgsiem.sources.wg_state.differ import Change
from wgsiem.sources.wg_state.records import Snapshot, SnapshotInterface

__all__ = ["INTERFACE_REMOVED", "Shard", "is_interface_group", "merge_shards", "split_groups"]

INTERFACE_REMOVED = (1, 1)
"""(key[0], key[2]) of the ``interface-removed`` group, whose peer count the merge adds up."""


def is_interface_group(key: tuple[Any, ...]) -> bool:
    """Whether a group key is one of the interface's own events (the same in every shard)."""
    return (key[0] == 0 and key[2] == 0) or (key[0] == 1 and key[2] == 1)


def _peer_key(raw: bytes) -> bytes:
    """The dump line's public key column (the differ's peer key); a malformed line is its own key."""
    cols = raw.split(b"\t", 2)
    return cols[1] if len(cols) > 1 else raw


class Shard:
    """Keeps shard ``index`` of ``count`` of every snapshot's peer lines (a pure filter plus a cache).

    A peer belongs to shard ``crc32(public key) % count``. When the capture reader vouches a snapshot
    kept the previous one's peers in order (``SnapshotInterface.previous``), the previous selection is
    reused and the shard's part says the same of its own previous part, so the differ keeps comparing
    position by position."""

    def __init__(self, index: int, count: int) -> None:
        if not 0 <= index < count:
            raise ValueError(f"shard {index} of {count}")
        self.index = index
        self.count = count
        # interface → (the whole record list, selection, positions, the shard's record list)
        self._last: dict[str, tuple[list[bytes], list[bool], list[int], list[bytes]]] = {}

    def owns(self, raw: bytes) -> bool:
        return zlib.crc32(_peer_key(raw)) % self.count == self.index

    def filter(self, snap: Snapshot) -> Snapshot:
        interfaces: dict[str, SnapshotInterface] = {}
        last = self._last
        for name, si in snap.interfaces.items():
            records = si.records
            prev = last.get(name)
            if (
                prev is not None
                and si.previous is not None
                and si.previous is prev[0]
                and len(records) == len(prev[0])
            ):
                _, selected, positions, previous = prev
            else:
                selected = list(map(self.owns, records))
                positions = list(compress(range(len(records)), selected))
                previous = None
            part = SnapshotInterface(
                si.info, si.implementation, si.peer_format, list(compress(records, selected))
            )
            part.previous = previous
            part.positions = positions
            part.total = si.peer_count
            last[name] = (records, selected, positions, part.records)
            interfaces[name] = part
        for name in [n for n in last if n not in snap.interfaces]:
            del last[name]
        return Snapshot(taken_at=snap.taken_at, interfaces=interfaces, errors=snap.errors)


def split_groups(
    changes: list[Change], marks: list[tuple[int, tuple[Any, ...]]], shard: int
) -> tuple[list[Change], list[tuple[Any, ...]], dict[tuple[Any, ...], int]]:
    """A shard's changes of one update → (the changes it emits, each one's group key, the peer counts
    of its ``interface-removed`` groups when it is not shard 0, which drops them).

    ``marks`` are the differ's (start index, key) pairs; a group runs to the next mark."""
    kept: list[Change] = []
    keys: list[tuple[Any, ...]] = []
    counts: dict[tuple[Any, ...], int] = {}
    if changes and (not marks or marks[0][0] != 0):
        raise AssertionError("an event before the first group mark")
    if not marks:  # a snapshot without interfaces, nothing due
        return kept, keys, counts
    ends = [m[0] for m in marks[1:]]
    ends.append(len(changes))
    for (start, key), end in zip(marks, ends, strict=True):
        if start == end:
            continue
        if shard and is_interface_group(key):
            if (key[0], key[2]) == INTERFACE_REMOVED:
                counts[key] = changes[start].details["peer_count"]
            continue
        kept.extend(changes[start:end])
        keys.extend([key] * (end - start))
    return kept, keys, counts


def merge_shards(
    parts: Iterable[tuple[list[Any], list[tuple[Any, ...]]]], counts: dict[tuple[Any, ...], int]
) -> list[Any]:
    """The shards' (lines, keys) — each in key order — as the single differ's sequence of lines.

    ``counts``: the other shards' peer counts of ``interface-removed`` groups (same keys), added to
    shard 0's line (an item is a line, or the document of an event JSON cannot express)."""
    # Each part is sorted and the keys are unique but for the interface's own groups, which only
    # shard 0 sends: a stable sort of the concatenation is the merge (timsort merges the runs in
    # linear time, faster than heapq.merge's Python-level generator)
    keyed = sorted(chain.from_iterable(zip(k, ln, strict=True) for ln, k in parts), key=_FIRST)
    at = {key: n for key, n in counts.items() if n} if counts else None
    if at:
        return [_add_peers(line, at[key]) if key in at else line for key, line in keyed]
    return list(map(_SECOND, keyed))


_FIRST = itemgetter(0)
_SECOND = itemgetter(1)


def _add_peers(line: Any, n: int) -> Any:
    """``interface-removed``'s ``wireguard.interface.peer_count`` plus ``n``, encoded as the encoder
    does (orjson round-trips its own output byte for byte)."""
    from wgsiem.sinks.ndjson.encoder import encode_document

    doc = orjson.loads(line) if isinstance(line, bytes) else line
    doc["wireguard"]["interface"]["peer_count"] += n
    return encode_document(doc) if isinstance(line, bytes) else doc

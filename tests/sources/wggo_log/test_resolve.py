"""Peer resolution: the per-generation index used for big directories answers exactly what
PeerDirectory.by_abbreviation answers, and answers follow the directory's generations."""

from __future__ import annotations

import base64
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo
from wgsiem.sources.wggo_log import resolve
from wgsiem.sources.wggo_log.resolve import PeerResolver


def directory(n: int, seed: int = 1) -> tuple[PeerDirectory, list[str]]:
    rnd = random.Random(seed)
    keys = [base64.b64encode(rnd.randbytes(32)).decode() for _ in range(n)]
    keys.append(keys[0][:4] + "x" * 35 + keys[0][39:])  # a deliberate abbreviation collision
    d = PeerDirectory()
    d.publish("wg0", [PeerInfo("wg0", k, None, (), None, 0.0) for k in keys[: n // 2] + keys[n:]], 0.0)
    d.publish("wg1", [PeerInfo("wg1", k, None, (), None, 0.0) for k in keys[n // 2 : n]], 0.0)
    return d, keys


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_index_equals_scan(seed: int) -> None:
    d, keys = directory(resolve.INDEX_ABOVE + 50, seed)
    big = PeerResolver(d)
    small_dir, _ = directory(resolve.INDEX_ABOVE + 50, seed)
    small = PeerResolver(small_dir)
    rnd = random.Random(seed)
    for k in [*rnd.sample(keys, 20), "AAAA" + "B" * 35 + "CCCC="]:
        for iface in ("wg0", "wg1", None):
            old = resolve.INDEX_ABOVE
            try:
                resolve.INDEX_ABOVE = 10**9  # force the by_abbreviation path
                scanned = small.resolve(k[:4], k[39:43], iface)
            finally:
                resolve.INDEX_ABOVE = old
            assert big.resolve(k[:4], k[39:43], iface) == scanned


def test_collision_is_ambiguous_and_generation_refreshes() -> None:
    d, keys = directory(10)
    r = PeerResolver(d)
    state, _key, candidates, _ = r.resolve(keys[0][:4], keys[0][39:43], "wg0")
    assert state == "ambiguous" and set(candidates) == {keys[0], keys[-1]}
    assert r.resolve(keys[7][:4], keys[7][39:43], "wg0")[0] == "unknown"  # it is on wg1
    assert r.resolve(keys[7][:4], keys[7][39:43], "wg1")[:2] == ("resolved", keys[7])
    d.publish("wg1", [], 0.0)  # the peer is gone: a new generation is not answered from the cache
    assert r.resolve(keys[7][:4], keys[7][39:43], "wg1")[0] == "unknown"
    assert r.counts == {"resolved": 1, "ambiguous": 1, "unknown": 2}

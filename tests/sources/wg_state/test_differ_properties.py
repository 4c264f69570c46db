"""Property tests of the differ: random histories of a peer population never break the invariants."""

from __future__ import annotations

import base64

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wgsiem.sources.wg_state.differ import Differ, DiffSettings
from wgsiem.sources.wg_state.dump_parser import parse_dump
from wgsiem.sources.wg_state.records import Fingerprinter, Snapshot

FP = Fingerprinter(b"k" * 32)
IFACE_LINE = "wg0\t{priv}\t{pub}\t51820\toff"


def key(i: int) -> str:
    return base64.b64encode(bytes([i]) * 32).decode()


def render(peers: dict[int, tuple[str, int, int, int]]) -> bytes:
    lines = [IFACE_LINE.format(priv=key(200), pub=key(201))]
    for i, (ep, hs, rx, tx) in sorted(peers.items()):
        lines.append(f"wg0\t{key(i)}\t(none)\t{ep}\t10.0.0.{i}/32\t{hs}\t{rx}\t{tx}\toff")
    return ("\n".join(lines) + "\n").encode()


# One step: for each of 4 peers, what happens during the poll interval.
peer_step = st.one_of(
    st.just(("idle",)),
    st.tuples(st.just("traffic"), st.integers(0, 10_000), st.integers(0, 10_000)),
    st.just(("handshake",)),
    st.just(("roam",)),
    st.just(("reset",)),
    st.just(("remove",)),
)
history = st.lists(
    st.tuples(st.integers(1, 400), st.lists(peer_step, min_size=4, max_size=4)), min_size=1, max_size=40
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history)
def test_invariants(steps: list[tuple[int, list[tuple]]]) -> None:
    d = Differ(FP, DiffSettings(session_timeout_secs=180, session_grace_secs=15, transfer_interval_secs=60))
    t = 1_000_000.0
    peers: dict[int, tuple[str, int, int, int]] = {i: ("(none)", 0, 0, 0) for i in range(4)}
    changes = []
    true_rx: dict[str, int] = {}  # bytes actually moved per peer key, as wg would count them
    changes += d.update(Snapshot(t, parse_dump(render(peers), FP).interfaces, []))  # baseline poll
    for dt, actions in steps:
        t += dt
        for i, act in enumerate(actions):
            if i not in peers:
                peers[i] = ("(none)", 0, 0, 0)  # re-added after a removal
            ep, hs, rx, tx = peers[i]
            if act[0] == "traffic":
                peers[i] = (f"203.0.113.{i}:5000", hs or int(t), rx + act[1], tx + act[2])
                true_rx[key(i)] = true_rx.get(key(i), 0) + act[1]
            elif act[0] == "handshake":
                peers[i] = (f"203.0.113.{i}:5000", int(t), rx, tx)
            elif act[0] == "roam" and ep != "(none)":
                peers[i] = (f"192.0.2.{i}:6000", hs, rx, tx)
            elif act[0] == "reset":
                peers[i] = (ep, 0, 0, 0)
            elif act[0] == "remove":
                del peers[i]
        res = parse_dump(render(peers), FP)
        assert not res.errors
        changes += d.update(Snapshot(t, res.interfaces, []))
    changes += d.flush(t + 1)

    open_sessions: dict[str, str] = {}
    started: set[str] = set()
    transferred: dict[str, int] = {}
    for c in changes:
        pk = c.peer.public_key if c.peer else None
        if c.action == "transfer":
            assert c.details["rx_bytes"] >= 0 and c.details["tx_bytes"] >= 0
            assert pk is not None
            transferred[pk] = transferred.get(pk, 0) + c.details["rx_bytes"]
        elif c.action == "session-started":
            assert pk not in open_sessions, "two open sessions for one peer"
            open_sessions[pk] = c.details["session_id"]
            started.add(c.details["session_id"])
        elif c.action == "session-ended":
            assert open_sessions.get(pk) == c.details["session_id"], "end without a matching start"
            del open_sessions[pk]
            assert c.details["rx_bytes"] >= 0 and c.details["tx_bytes"] >= 0
            assert c.details["duration_secs"] >= 0
    # every byte wg counted (after the baseline poll) is reported exactly once by transfer events
    for pk, n in true_rx.items():
        assert transferred.get(pk, 0) == n
    assert len({c.id for c in changes}) == len(changes), "event ids must be unique"


@settings(max_examples=50, deadline=None)
@given(history)
def test_restart_is_invisible(steps: list[tuple[int, list[tuple]]]) -> None:
    """Exporting and restoring state between any two polls yields the same changes as never stopping."""
    import orjson

    def run(split_at: int | None) -> list[tuple[str, str]]:
        d = Differ(FP)
        t = 1_000_000.0
        peers: dict[int, tuple[str, int, int, int]] = {i: ("(none)", 0, 0, 0) for i in range(4)}
        out = []
        for n, (dt, actions) in enumerate(steps):
            if split_at is not None and n == split_at:
                saved = orjson.loads(orjson.dumps(d.export_state()))
                d = Differ(FP)
                d.restore_state(saved)
            t += dt
            for i, act in enumerate(actions):
                _ep, hs, rx, tx = peers.get(i, ("(none)", 0, 0, 0))
                if act[0] == "traffic":
                    peers[i] = (f"203.0.113.{i}:5000", hs or int(t), rx + act[1], tx + act[2])
                elif act[0] == "handshake":
                    peers[i] = (f"203.0.113.{i}:5000", int(t), rx, tx)
            out += [
                (c.action, c.id) for c in d.update(Snapshot(t, parse_dump(render(peers), FP).interfaces, []))
            ]
        return [o for o in out if o[0] != "transfer"]

    baseline = run(None)
    for split in range(1, len(steps)):
        assert run(split) == baseline

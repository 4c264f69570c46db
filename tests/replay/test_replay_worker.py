"""The two-process replay (``ReplaySource(worker_process=True)``) gives the in-process replay's bytes.

The golden capture of ``test_replay_golden`` (every action, bad lines, keyframes and deltas) replays
through the worker into the golden digest, with and without the worker's lines kept as the sinks'
encoding; counts, errors and telemetry match the in-process replay's.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.replay.test_replay_golden import GOLDEN_SHA256, _key, generate
from tests.support.ecs import validate
from wgsiem.pipeline.runtime import Pipeline
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.replay.driver import ReplaySource, plan_replay
from wgsiem.sinks.ndjson.config import NdjsonSinkConfig
from wgsiem.sinks.ndjson.sink import NdjsonSink
from wgsiem.sources.wg_state.capture import CaptureReader, CaptureWriter, read_capture
from wgsiem.sources.wg_state.differ import Differ
from wgsiem.sources.wg_state.records import Fingerprinter, InterfaceRecord, PeerRecord

SECRET = b"golden-fingerprint-secret-32byte"


def replay(
    capture: Path,
    work: Path,
    *,
    worker: bool,
    keep: bool = False,
    lines: bool = False,
    shards: int = 1,
    stop_after: int | None = None,
) -> tuple[bytes, ReplaySource, TelemetryRegistry]:
    work.mkdir()
    (work / "fingerprint.key").write_bytes(SECRET)
    reg = TelemetryRegistry()
    src = ReplaySource(
        plan_replay([capture]),
        {},
        hostname="gw-golden",
        state_dir=work,
        registry=reg,
        worker_process=worker,
        keep_encoded=keep,
        lines_only=lines,
        shards=shards,
    )
    out = work / "events.ndjson"
    sink = NdjsonSink.build(NdjsonSinkConfig(type="ndjson", path=str(out), max_bytes=1 << 40), reg)
    stop = asyncio.Event()
    if stop_after == 0:  # stop as soon as the first events are out
        emit_batch = src._emit

        async def emit_then_stop(emit, batch):  # type: ignore[no-untyped-def]
            stop.set()
            await emit_batch(emit, batch)

        src._emit = emit_then_stop  # type: ignore[method-assign]
    elif stop_after is not None:

        def progress(st, _total: int, _done: int) -> None:
            if st.events >= stop_after:
                stop.set()

        src.progress = progress
    asyncio.run(Pipeline([src], [], [sink], reg).run(stop))
    return out.read_bytes(), src, reg


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("golden") / "capture"
    generate(path, keyframe_secs=300.0)
    return path


@pytest.mark.parametrize(
    ("keep", "lines", "shards"),
    [(False, False, 1), (True, False, 1), (True, True, 1), (True, True, 2), (False, False, 3)],
)
def test_the_worker_gives_the_golden_bytes(
    capture: Path, tmp_path: Path, keep: bool, lines: bool, shards: int
) -> None:
    data, _, _ = replay(capture, tmp_path / "run", worker=True, keep=keep, lines=lines, shards=shards)
    assert hashlib.sha256(data).hexdigest() == GOLDEN_SHA256
    docs = [orjson.loads(line) for line in data.splitlines()]
    for doc in docs[:: max(1, len(docs) // 200)]:
        validate(doc)


@pytest.mark.parametrize("shards", [1, 2])
def test_the_worker_counts_what_the_in_process_replay_counts(
    capture: Path, tmp_path: Path, shards: int
) -> None:
    _, a, reg_a = replay(capture, tmp_path / "in", worker=False)
    _, b, reg_b = replay(capture, tmp_path / "worker", worker=True, keep=True, lines=True, shards=shards)
    sa, sb = a.stats, b.stats
    assert (sa.records, sa.bad_records, sa.events, sa.first_time, sa.last_time, sa.errors, sa.by_type) == (
        sb.records,
        sb.bad_records,
        sb.events,
        sb.first_time,
        sb.last_time,
        sb.errors,
        sb.by_type,
    )
    assert reg_a.snapshot() == reg_b.snapshot()


@pytest.mark.parametrize("shards", [1, 2])
def test_a_delta_without_its_keyframe_is_a_located_bad_record_in_both(
    capture: Path, tmp_path: Path, shards: int
) -> None:
    part = tmp_path / "part"
    part.mkdir()
    files = sorted(capture.iterdir())
    for f in files[1:40]:  # the keyframe left out: the deltas before the next one cannot be rebuilt
        (part / f.name).write_bytes(f.read_bytes())
    da, a, _ = replay(part, tmp_path / "in", worker=False)
    db, b, _ = replay(part, tmp_path / "worker", worker=True, keep=True, shards=shards)
    assert da == db
    assert a.stats.bad_records == b.stats.bad_records > 0
    assert a.stats.errors == b.stats.errors
    assert b.stats.errors[0].startswith(f"{part / files[1].name}: ")


@pytest.mark.parametrize("shards", [1, 2])
def test_a_stopped_worker_replay_ends_and_delivers_what_it_emitted(
    capture: Path, tmp_path: Path, shards: int
) -> None:
    data, src, _ = replay(capture, tmp_path / "run", worker=True, keep=True, shards=shards, stop_after=1)
    assert 0 < src.stats.records <= len(list(capture.iterdir()))
    assert data.count(b"\n") == src.stats.events


def test_private_and_preshared_keys_never_leave_the_worker(tmp_path: Path) -> None:
    """A plain ``wg show all dump`` (real keys) replayed through the worker: fingerprints only."""
    priv, psk = _key(1, "private"), _key(2, "psk")
    dump = tmp_path / "dumps"
    dump.mkdir()
    for n, rx in enumerate((100, 5000)):
        (dump / f"{1_767_571_200 + 10 * n}.dump").write_text(
            f"wg0\t{priv}\t{_key(3, 'pub')}\t51820\toff\n"
            f"wg0\t{_key(4, 'peer')}\t{psk}\t203.0.113.9:4500\t10.8.0.2/32\t"
            f"{1_767_571_195 + n}\t{rx}\t{rx}\t25\n"
        )
    data, src, _ = replay(dump, tmp_path / "run", worker=True, keep=True)
    assert src.stats.events > 0
    for secret in (priv, psk):
        assert secret.encode() not in data
        assert secret.encode().hex().encode() not in data


_STEP = st.lists(
    st.tuples(st.integers(0, 7), st.sampled_from(["traffic", "handshake", "roam", "remove", "add"])),
    max_size=6,
)


@given(steps=st.lists(_STEP, min_size=1, max_size=25))
@settings(max_examples=60, deadline=None)
def test_a_delta_fed_differ_finds_the_changes_a_full_parse_finds(steps: list[list[tuple[int, str]]]) -> None:
    """Deltas that keep every peer in place let the differ compare position by position; peers coming
    and going make it hash again. Either way: the changes of the rebuilt full text, parsed again."""
    import tempfile

    fp = Fingerprinter(SECRET)
    info = InterfaceRecord("wg0", _key(0, "gw"), True, "0123456789abcdef", 51820, 0)
    peers = {i: [0, 0, 0, f"203.0.113.{i + 1}:51820"] for i in range(4)}
    with tempfile.TemporaryDirectory() as tmp:
        writer = CaptureWriter(Path(tmp), keyframe_secs=3600.0)
        reader, text = CaptureReader(), CaptureReader()
        fast, plain = Differ(fp, host="h"), Differ(fp, host="h")
        t = 1_767_571_200.0
        for step in steps:
            t += 10
            for i, what in step:
                if what == "add":
                    peers.setdefault(i, [0, 0, 0, None])
                elif i not in peers:
                    continue
                elif what == "traffic":
                    peers[i][1] += 1000 + i
                    peers[i][2] += 10
                elif what == "handshake":
                    peers[i][0] = int(t)
                elif what == "roam":
                    peers[i][3] = f"198.51.100.{i + 1}:{int(t) % 60000 + 1024}"
                else:
                    del peers[i]
            recs = [
                PeerRecord("wg0", _key(i, "p"), False, None, p[3], (f"10.8.0.{i}/32",), p[0], p[1], p[2], 0)
                for i, p in peers.items()
            ]
            data = writer.write(t, [(info, "kernel", recs)]).read_bytes()
            a = fast.update(reader.snapshot(data, t, fp, "x"))
            b = plain.update(read_capture(text.full(data, "x"), t, fp, "x"))
            assert [(c.action, c.time, c.peer, c.details, c.id) for c in a] == [
                (c.action, c.time, c.peer, c.details, c.id) for c in b
            ]


def test_a_delta_that_keeps_the_peers_is_diffed_position_by_position(tmp_path: Path) -> None:
    fp = Fingerprinter(SECRET)
    info = InterfaceRecord("wg0", _key(0, "gw"), True, "0123456789abcdef", 51820, 0)
    writer, reader, differ = CaptureWriter(tmp_path, keyframe_secs=3600.0), CaptureReader(), Differ(fp)

    def poll(t: float, rx: int, keys: range) -> None:
        recs = [
            PeerRecord("wg0", _key(i, "p"), False, None, None, (f"10.8.0.{i}/32",), 0, rx * i, 0, 0)
            for i in keys
        ]
        differ.update(reader.snapshot(writer.write(t, [(info, "kernel", recs)]).read_bytes(), t, fp, "x"))

    poll(0.0, 1, range(3))  # keyframe (parsed as text): hashed
    poll(10.0, 2, range(3))  # the first delta after it: hashed, its record list kept
    assert differ.ifaces["wg0"].hashes is not None
    poll(20.0, 3, range(3))  # same peers, same order
    assert differ.ifaces["wg0"].hashes is None
    poll(30.0, 4, range(4))  # a peer added: hashed again
    assert differ.ifaces["wg0"].hashes is not None


def test_the_cli_uses_the_worker_only_when_nothing_needs_the_in_process_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``wgsiem replay`` of wg_state captures into NDJSON only runs the worker; with a transform it
    replays in one process. Both give the same documents."""
    from click.testing import CliRunner

    import wgsiem.replay.driver as driver
    from wgsiem.cli.main import cli

    generate(tmp_path / "capture", keyframe_secs=300.0)
    state = tmp_path / "state"
    state.mkdir()
    (state / "fingerprint.key").write_bytes(SECRET)
    seen: list[bool] = []
    real_init = driver.ReplaySource.__init__

    def spy(self: ReplaySource, *args: object, **kwargs: object) -> None:
        seen.append(bool(kwargs.get("worker_process")) and bool(kwargs.get("lines_only")))
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(driver.ReplaySource, "__init__", spy)
    cfg = tmp_path / "with-transform.yaml"
    cfg.write_text("hostname: gw-golden\ntransforms:\n  scope:\n    type: enrich_geo\n    fallback: none\n")
    plain = tmp_path / "plain.yaml"
    plain.write_text("hostname: gw-golden\n")
    outs = []
    for n, config in enumerate((plain, cfg)):
        out = tmp_path / f"out{n}.ndjson"
        args = ["replay", str(tmp_path / "capture"), "--config", str(config), "-o", str(out)]
        res = CliRunner().invoke(cli, [*args, "--state-dir", str(state), "-q"])
        assert res.exit_code == 0, (res.output, res.exception)
        outs.append([orjson.loads(line) for line in out.read_bytes().splitlines()])
    assert seen == [True, False]
    assert hashlib.sha256((tmp_path / "out0.ndjson").read_bytes()).hexdigest() == GOLDEN_SHA256
    # the geo transform only adds address scopes: the documents are the same once those are set aside
    ids = [sorted(d["event"]["id"] for d in docs) for docs in outs]
    assert ids[0] == ids[1] and len(ids[0]) > 100


def test_a_stopped_sharded_replay_ends_every_shard_at_the_same_record(capture: Path, tmp_path: Path) -> None:
    """The shards stop at the furthest record any of them reached, then drain: the output is the
    in-process replay of exactly the records replayed."""
    data, src, _ = replay(
        capture, tmp_path / "run", worker=True, keep=True, lines=True, shards=2, stop_after=0
    )
    done = src.stats.records
    assert 0 < done < len(list(capture.iterdir())) // 2  # stopped early
    part = tmp_path / "part"
    part.mkdir()
    for f in sorted(capture.iterdir())[:done]:
        (part / f.name).write_bytes(f.read_bytes())
    expected, _, _ = replay(part, tmp_path / "in", worker=False)
    assert data == expected

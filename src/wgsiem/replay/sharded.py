"""A replay of ``wg_state`` captures with the peers split over several differ processes.

Why: one differ process is ~150 s of CPU for a week of 10-second captures of 1,000 peers, and the
issue's target is a minute on a 2-core machine. Peers are independent in the differ, so each worker
process (``python -m wgsiem.replay.worker``, as the one-worker replay) reads every capture but diffs
only one shard of the peers (:mod:`wgsiem.sources.wg_state.shard`) and sends each event's line with its
merge key ``(record number, *group key)``; this process merges the shards' lines into the single
differ's order — byte-identical output, the same ``event.id``s — and runs the pipeline.

Protocol, per worker (a ``multiprocessing.connection.Connection`` over a socket pair):

* parent → worker: ``(paths, config, hostname, state_dir, component_id, shard index, shard count)``;
* worker → parent ``("events", records_done, lines, count, keys, counts)``: ``lines`` a blob of
  ``count`` NDJSON lines (or a list when it holds a document JSON cannot express), ``keys`` their
  merge keys, ``counts`` the shard's peer counts of ``interface-removed`` groups (shards > 0);
* worker → parent ``("bad", records_done, message)``: a file the source rejected (shard 0 only: every
  shard reads the same files);
* parent → worker ``"stop"``; worker → parent ``("stopping", records_done)`` once everything it
  diffed is sent; parent → worker ``("stop-at", n)``: diff up to record ``n`` (the furthest any shard
  got, so all shards end at the same record), then drain;
* worker → parent ``("drained", records_done, lines, count, keys)``, then ``("done", records_done,
  telemetry)`` or ``("failed", traceback)``.

The merge only emits a record's events once every shard has sent all of that record's (each message
says how many records its shard has finished); the parent reads the shard that is behind, and the
socket pairs' bounded buffers hold the others back.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
import socket
import subprocess
import sys
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from wgsiem.errors import WgsiemError
from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.runtime import Emit
from wgsiem.replay.document import LineDocument

if TYPE_CHECKING:
    from wgsiem.replay.driver import ReplaySource

__all__ = ["run_sharded", "work_shard"]

BATCH_EVENTS = 2000
# ... or after this many records: the merge emits a record's events only once every shard is past it
SEND_EVERY_RECORDS = 64
GC_EVERY_RECORDS = 2000

Key = tuple[Any, ...]


def work_shard(
    conn: Connection,
    paths: list[str],
    config: Any,
    hostname: str,
    state_dir: str,
    component_id: str,
    index: int,
    count: int,
) -> None:
    """The worker's side (see the module docs): diff shard ``index`` of ``count``, send keyed lines."""
    from wgsiem.pipeline.telemetry import TelemetryRegistry
    from wgsiem.sources.wg_state.capture import capture_time
    from wgsiem.sources.wg_state.shard import Shard
    from wgsiem.sources.wg_state.source import WgStateSource

    gc.disable()  # the per-event objects are acyclic and short-lived: see ReplaySource.run
    tel = TelemetryRegistry().register(component_id, "source", "wg_state")
    src = WgStateSource(component_id, config, hostname=hostname, state_dir=Path(state_dir), telemetry=tel)
    shard = Shard(index, count)
    lines: list[Any] = []
    keys: list[Key] = []
    counts: dict[Key, int] = {}
    done = 0
    stop_at: int | None = None

    def send(kind: str) -> None:
        nonlocal lines, keys, counts
        blob: Any = lines
        if all(isinstance(x, bytes) for x in lines):
            blob = b"".join(lines)
        if kind == "drained":
            conn.send((kind, done, blob, len(lines), keys))
        else:
            conn.send((kind, done, blob, len(lines), keys, counts))
        lines, keys, counts = [], [], {}

    for raw in paths:
        if stop_at is None and conn.poll() and conn.recv() == "stop":
            send("events")
            conn.send(("stopping", done))
            reply = conn.recv()
            stop_at = int(reply[1])
        if stop_at is not None and done >= stop_at:
            break
        done += 1
        if done % GC_EVERY_RECORDS == 0:
            gc.collect(1)
        path = Path(raw)
        at = capture_time(path)
        assert at is not None
        try:
            got, got_keys, got_counts = src.process_shard_lines(path, at, shard)
        except WgsiemError as exc:
            if index == 0:
                conn.send(("bad", done, f"{raw}: {exc.render()}"))
            continue
        if got:
            lines += got
            keys += [(done, *k) for k in got_keys]
        if got_counts:
            counts.update({(done, *k): n for k, n in got_counts.items()})
        if len(lines) >= BATCH_EVENTS or done % SEND_EVERY_RECORDS == 0:
            send("events")
    send("events")
    if stop_at is None and conn.poll() and conn.recv() == "stop":  # a stop after the last record
        conn.send(("stopping", done))
        conn.recv()
    lines, drained_keys = src.drain_shard_lines(shard)
    keys = list(drained_keys)
    send("drained")
    conn.send(("done", done, (tel.sent, dict(tel.errors), tel.last_error)))


class _Worker:
    """The parent's view of one shard's process."""

    def __init__(self, index: int, conn: Connection, proc: subprocess.Popen[bytes]) -> None:
        self.index = index
        self.conn = conn
        self.proc = proc
        self.done = 0  # records whose lines have all arrived
        self.finished = False
        self.lines: list[Any] = []
        self.keys: list[Key] = []
        self.drained: tuple[list[Any], list[Key]] = ([], [])
        self.stopping: int | None = None

    async def recv(self) -> Any:
        try:
            return await asyncio.to_thread(self.conn.recv)
        except EOFError:
            raise WgsiemError(
                f"replay worker process {self.index} ended unexpectedly (exit code {self.proc.poll()})",
                fix="run the replay again; if it recurs, report it with the capture",
            ) from None


def _spawn(index: int) -> tuple[Connection, subprocess.Popen[bytes]]:
    ours, theirs = socket.socketpair()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wgsiem.replay.worker", str(theirs.fileno())],
        pass_fds=[theirs.fileno()],
        stdin=subprocess.DEVNULL,
    )
    theirs.close()
    return Connection(ours.detach()), proc


def _items(blob: Any, count: int) -> list[Any]:
    if isinstance(blob, bytes):
        items = blob.splitlines(keepends=True)
        assert len(items) == count, "a worker line is not one NDJSON line"
        return items
    return cast(list[Any], blob)


async def run_sharded(replay: ReplaySource, emit: Emit, stop: Any, shards: int) -> None:
    """:meth:`ReplaySource.run` with the ``wg_state`` work split over ``shards`` worker processes."""
    from wgsiem.replay.worker import _encoded_attr
    from wgsiem.sources.wg_state.shard import merge_shards

    st = replay.stats
    src = replay.sources["wg_state"]
    ordered = replay.ordered_payloads()
    times = [t for t, _ in ordered]
    total = len(replay.plan.files)
    paths = [str(p) for _, p in ordered]
    attr = _encoded_attr() if replay.keep_encoded else None
    lines_only = replay.lines_only and attr is not None
    cid = src.component_id
    counts: Counter[Key] = Counter()
    workers: list[_Worker] = []
    tel_sent = 0
    tel_errors: Counter[str] = Counter()
    last_error = None
    last_report = time.monotonic()

    def envelopes(items: list[Any]) -> list[Envelope]:
        import orjson

        ns = time.time_ns()
        out = []
        for item in items:
            if not isinstance(item, bytes):  # an event JSON cannot express: the sinks count it
                out.append(Envelope(item, EventMeta(cid, ns)))
            elif attr is None:
                out.append(Envelope(orjson.loads(item), EventMeta(cid, ns)))
            elif lines_only:
                out.append(
                    Envelope(cast(dict[str, Any], LineDocument(item)), EventMeta(cid, ns, None, {attr: item}))
                )
            else:
                out.append(Envelope(orjson.loads(item), EventMeta(cid, ns, None, {attr: item})))
        return out

    async def flush_ready() -> None:
        """Emit every record's events that all shards have sent, merged."""
        ready = min(w.done for w in workers)
        parts = []
        for w in workers:
            cut = bisect.bisect_right(w.keys, ready, key=_record) if w.keys else 0
            if cut:
                parts.append((w.lines[:cut], w.keys[:cut]))
                del w.lines[:cut], w.keys[:cut]
        if st.records < ready:
            replay.telemetry.received += ready - st.records
            st.records = ready
            st.first_time = times[0]
            st.last_time = times[ready - 1]
        if parts:
            merged = merge_shards(parts, counts) if len(parts) > 1 or counts else parts[0][0]
            batch = envelopes(merged)
            st.by_type["wg_state"] += len(batch)
            await replay._emit(emit, batch)

    try:
        for i in range(shards):
            conn, proc = _spawn(i)
            workers.append(_Worker(i, conn, proc))
            conn.send((paths, src.config, replay.hostname, str(replay.state_dir), cid, i, shards))
        awaiting: list[_Worker] | None = None  # after a stop: the shards asked where they are
        while not all(w.finished for w in workers):
            if stop.is_set() and awaiting is None:
                awaiting = [w for w in workers if not w.finished]
                for w in awaiting:
                    _tell(w, "stop")
            if awaiting:
                asked = [w for w in awaiting if w.stopping is None and not w.finished]
                if not asked:
                    # every shard said where it is: all go on to the furthest, then drain
                    at = max(w.done for w in workers)
                    for w in awaiting:
                        if w.stopping is not None:
                            _tell(w, ("stop-at", at))
                    awaiting = []
                    continue
                w = asked[0]
            else:
                # the shard that is behind (the others wait on their sockets' bounded buffers)
                w = min((w for w in workers if not w.finished), key=_done)
            msg = await w.recv()
            kind = msg[0]
            if kind == "failed":
                raise WgsiemError(f"replay worker process {w.index} failed:\n{msg[1]}")
            if kind == "events":
                items = _items(msg[2], msg[3])
                w.lines += items
                w.keys += msg[4]
                counts.update(msg[5])
                w.done = msg[1]
                await flush_ready()
            elif kind == "stopping":
                w.done = msg[1]
                w.stopping = msg[1]
            elif kind == "bad":
                st.bad_records += 1
                replay.telemetry.error("process", "wg_state", msg[2])
                if len(st.errors) < 20:
                    st.errors.append(msg[2])
            elif kind == "drained":
                w.drained = (_items(msg[2], msg[3]), msg[4])
                w.done = msg[1]
            elif kind == "done":
                w.done = msg[1]
                w.finished = True
                sent, errors, err = msg[2]
                tel_sent += sent
                tel_errors.update(errors)
                if err is not None and (last_error is None or w.index == 0):
                    last_error = err
            if replay.progress is not None and time.monotonic() - last_report >= 1.0:
                replay.progress(st, total, 0)
                last_report = time.monotonic()
        await flush_ready()
        drained = merge_shards([w.drained for w in workers], Counter())
        if drained:
            await replay._emit(emit, envelopes(drained))
        tel = src.telemetry
        tel.sent += tel_sent  # the drained lines are not: as in the one-worker and in-process replays
        tel.errors.update(tel_errors)
        if last_error is not None:
            tel.last_error = last_error
    finally:
        for w in workers:
            w.conn.close()
        for w in workers:
            try:
                w.proc.wait(10)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
    if replay.progress is not None:
        replay.progress(st, total, 1)


def _record(key: Key) -> int:
    return cast(int, key[0])


def _done(w: _Worker) -> int:
    return w.done


def _tell(w: _Worker, msg: Any) -> None:
    """Send to a worker that may have finished and closed its end (its last messages still arrive)."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        w.conn.send(msg)

"""A replay of ``wg_state`` captures on two cores: the differ in a worker process, the pipeline here.

Why: on a busy gateway the replay is CPU-bound in one Python process — reading the snapshots,
diffing them, and building and encoding every event. A week of 10-second captures of 1,000 peers is
60,480 snapshots and ~3 million events. :func:`run_worker` (spawned by
:class:`~wgsiem.replay.driver.ReplaySource` when every file to replay is a ``wg_state`` capture) reads
the captures in the driver's order, runs the very same :class:`WgStateSource` over them, and sends each
event as its NDJSON line (:meth:`WgStateSource.process_lines`, byte templates); the parent turns the
lines back into documents and runs the pipeline (transforms, sinks) on its own core. The socket pair
between them carries bytes, the cheapest thing to move between processes; its bounded buffer is the
backpressure (the worker blocks while the parent is behind).

Protocol (a ``multiprocessing.connection.Connection`` on each end of the socket pair), in order:

* parent → worker: its arguments (capture paths in replay order, the ``wg_state`` config, hostname,
  state directory — whose fingerprint secret both use —, component id);

* worker → parent ``("events", records_done, blob, count)``: ``count`` NDJSON lines (``\\n``-terminated)
  joined, after the first ``records_done`` files;
* worker → parent ``("drained", …)`` / ``("drained-document", …)``: the same, for the transfers
  still pending at the end (:meth:`WgStateSource.drain_lines`);
* worker → parent ``("document", records_done, document)``: an event whose document JSON cannot
  express (a counter past 64 bits): sent as itself, for the sinks to count and drop as in-process;
* worker → parent ``("bad", records_done, message)``: a file the source rejected (counted, reported,
  skipped — the same as the in-process replay);
* parent → worker ``"stop"``: the pipeline is stopping: drain the pending transfers and finish;
* worker → parent ``("done", records_done, telemetry)`` last, or ``("failed", traceback)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
import subprocess
import sys
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import orjson

from wgsiem.errors import WgsiemError
from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.runtime import Emit
from wgsiem.replay.document import LineDocument

if TYPE_CHECKING:
    from wgsiem.replay.driver import ReplaySource

__all__ = ["BATCH_EVENTS", "run_parallel", "run_worker"]

BATCH_EVENTS = 2000
GC_EVERY_RECORDS = 2000


def run_worker(conn: Connection) -> None:
    """The worker process's entry point: its arguments are the first message (see the module docs)."""
    try:
        args = conn.recv()
        if len(args) == 7:  # one shard of the peers: see wgsiem.replay.sharded
            from wgsiem.replay.sharded import work_shard

            work_shard(conn, *args)
        else:
            paths, config, hostname, state_dir, component_id = args
            _work(conn, paths, config, hostname, state_dir, component_id)
    except BaseException:
        conn.send(("failed", traceback.format_exc(limit=20)))
    finally:
        conn.close()


def _work(
    conn: Connection, paths: list[str], config: Any, hostname: str, state_dir: str, component_id: str
) -> None:
    from wgsiem.pipeline.telemetry import TelemetryRegistry
    from wgsiem.sources.wg_state.capture import capture_time
    from wgsiem.sources.wg_state.source import WgStateSource

    # the per-event objects are acyclic and short-lived: see ReplaySource.run
    gc.disable()
    tel = TelemetryRegistry().register(component_id, "source", "wg_state")
    src = WgStateSource(component_id, config, hostname=hostname, state_dir=Path(state_dir), telemetry=tel)
    out: list[bytes] = []
    done = 0

    def send(lines: list[Any], kind: str = "events") -> None:
        """Lines as one blob; a document (an event JSON cannot express) as itself, in order."""
        if src.line_encoder.unencodable == sent_docs[0]:
            conn.send((kind, done, b"".join(lines), len(lines)))
            return
        sent_docs[0] = src.line_encoder.unencodable
        run: list[bytes] = []
        for item in lines:
            if isinstance(item, bytes):
                run.append(item)
                continue
            if run:
                conn.send((kind, done, b"".join(run), len(run)))
                run = []
            conn.send(("document" if kind == "events" else "drained-document", done, item))
        if run:
            conn.send((kind, done, b"".join(run), len(run)))

    sent_docs = [0]
    for raw in paths:
        if conn.poll() and conn.recv() == "stop":
            break
        done += 1
        if done % GC_EVERY_RECORDS == 0:
            gc.collect(1)
        path = Path(raw)
        at = capture_time(path)
        assert at is not None
        try:
            out += src.process_lines(path, at)
        except WgsiemError as exc:
            conn.send(("bad", done, f"{raw}: {exc.render()}"))
            continue
        if len(out) >= BATCH_EVENTS or src.line_encoder.unencodable != sent_docs[0]:
            send(out)
            out = []
    if out:
        send(out)
    drained = src.drain_lines()
    if drained:
        send(drained, "drained")
    conn.send(("done", done, (tel.sent, dict(tel.errors), tel.last_error)))


# ---------------------------------------------------------------------------------------- the parent


def _encoded_attr() -> str | None:
    try:
        from wgsiem.sinks.ndjson.encoder import ENCODED_ATTR
    except ImportError:  # an NDJSON encoder without the memo: every sink encodes again
        return None
    return ENCODED_ATTR


async def run_parallel(replay: ReplaySource, emit: Emit, stop: Any) -> None:
    """:meth:`ReplaySource.run` with the ``wg_state`` work in a worker process (see the module docs)."""
    shards = replay.shards
    state_file = Path(replay.state_dir) / "wg_state" / f"{replay.sources['wg_state'].component_id}.json"
    if shards > 1 and not state_file.exists():  # restored state would be every shard's: one worker then
        from wgsiem.replay.sharded import run_sharded

        await run_sharded(replay, emit, stop, shards)
        return
    st = replay.stats
    src = replay.sources["wg_state"]
    ordered = replay.ordered_payloads()
    times = [t for t, _ in ordered]
    total = len(replay.plan.files)
    # A fresh interpreter (``python -m wgsiem.replay.worker``), not ``multiprocessing``: fork would
    # copy a process that runs an event loop and threads, and spawn re-imports the caller's __main__.
    ours, theirs = socket.socketpair()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wgsiem.replay.worker", str(theirs.fileno())],
        pass_fds=[theirs.fileno()],
        stdin=subprocess.DEVNULL,
    )
    theirs.close()
    parent = Connection(ours.detach())
    parent.send(
        (
            [str(p) for _, p in ordered],
            src.config,
            replay.hostname,
            str(replay.state_dir),
            src.component_id,
        )
    )
    attr = _encoded_attr() if replay.keep_encoded else None
    lines_only = replay.lines_only
    cid = src.component_id
    loads = orjson.loads
    last_report = time.monotonic()
    stop_sent = False
    try:
        while True:
            if stop.is_set() and not stop_sent:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    parent.send("stop")  # the worker may have finished: its last messages still arrive
                stop_sent = True
            try:
                msg = await asyncio.to_thread(parent.recv)
            except EOFError:
                raise WgsiemError(
                    f"the replay worker process ended unexpectedly (exit code {proc.poll()})",
                    fix="run the replay again; if it recurs, report it with the capture",
                ) from None
            kind = msg[0]
            if kind == "failed":
                raise WgsiemError(f"the replay worker process failed:\n{msg[1]}")
            done = msg[1]
            replay.telemetry.received += done - st.records
            st.records = done
            if done:
                st.first_time = times[0]
                st.last_time = times[done - 1]
            if kind in ("events", "drained"):
                lines = msg[2].splitlines(keepends=True)
                assert len(lines) == msg[3], "a worker line is not one NDJSON line"
                ns = time.time_ns()
                if attr is None:
                    batch = [Envelope(loads(line), EventMeta(cid, ns)) for line in lines]
                elif lines_only:
                    batch = [
                        Envelope(
                            cast(dict[str, Any], LineDocument(line)), EventMeta(cid, ns, None, {attr: line})
                        )
                        for line in lines
                    ]
                else:
                    batch = [Envelope(loads(line), EventMeta(cid, ns, None, {attr: line})) for line in lines]
                if kind == "events":  # the in-process replay counts the drained events in no type
                    st.by_type["wg_state"] += len(batch)
                await replay._emit(emit, batch)
            elif kind in ("document", "drained-document"):
                if kind == "document":
                    st.by_type["wg_state"] += 1
                await replay._emit(emit, [Envelope(msg[2], EventMeta(cid, time.time_ns()))])
            elif kind == "bad":
                st.bad_records += 1
                replay.telemetry.error("process", "wg_state", msg[2])
                if len(st.errors) < 20:
                    st.errors.append(msg[2])
            elif kind == "done":
                sent, errors, last_error = msg[2]
                tel = src.telemetry
                tel.sent += sent
                tel.errors.update(errors)
                if last_error is not None:
                    tel.last_error = last_error
                break
            if replay.progress is not None and time.monotonic() - last_report >= 1.0:
                replay.progress(st, total, 0)
                last_report = time.monotonic()
    finally:
        parent.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if replay.progress is not None:
        replay.progress(st, total, 1)


if __name__ == "__main__":
    # A Ctrl-C in a terminal reaches the whole process group: the parent turns it into a stop (the
    # workers drain their pending transfers at the same record), so the workers must not die of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run_worker(Connection(int(sys.argv[1])))

"""End to end through the real durable outbox (``wgsiem.sinks.outbox.sink.OutboxSink``) built by the
sink registry, against the contract server on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.registry import SinkContext, build_sink
from wgsiem.sources.peer_directory import PeerDirectory

from .conftest import config, real_documents
from .contract_server import ContractServer, start

pytest.importorskip("wgsiem.sinks.outbox.sink")


def _ctx(state_dir: Path) -> SinkContext:
    return SinkContext(
        registry=TelemetryRegistry(),
        component_id="es",
        hostname="gw-test",
        state_dir=state_dir,
        peers=PeerDirectory(),
    )


def _envelopes(docs: list[dict[str, Any]]) -> list[Envelope]:
    return [Envelope(d, EventMeta("test", time.time_ns())) for d in docs]


async def _until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def _set_up(server: ContractServer) -> ContractServer:
    """A cluster where the templates were installed before (``install.sh`` / ``install.template``)."""
    from wgsiem.sinks.elasticsearch.templates import component_templates, index_templates

    server.component_templates.update(component_templates())
    server.index_templates.update(index_templates())
    return server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_registry_builds_an_outbox_sink_that_delivers_every_document(tmp_path: Path) -> None:
    server = ContractServer()
    docs = real_documents()

    async def go() -> dict[str, Any]:
        running = await start(server)
        try:
            cfg = config(running.url, install={"template": True}, outbox={"retry_initial_backoff_secs": 0.05})
            sink = build_sink(cfg, _ctx(tmp_path))
            await sink.health_check()
            await sink.start()
            await sink.write(_envelopes(docs))
            await _until(lambda: server.count() == len(docs))
            status: dict[str, Any] = sink.status()
            await sink.close()
            return status
        finally:
            await running.stop()

    status = asyncio.run(go())
    assert server.count() == len(docs) and server.ecs_problems == []
    assert type(status) is dict


def test_an_outage_loses_nothing_and_recovery_delivers_everything_once(tmp_path: Path) -> None:
    docs = real_documents()
    port = _free_port()

    async def go() -> ContractServer:
        server = _set_up(ContractServer())
        url = f"http://127.0.0.1:{port}"
        cfg = config(
            url,
            request_timeout_secs=2,
            install={"template": True},
            outbox={
                "retry_initial_backoff_secs": 0.05,
                "retry_max_backoff_secs": 0.2,
                "batch_max_events": 50,
            },
        )
        sink = build_sink(cfg, _ctx(tmp_path))
        await sink.start()  # the cluster is down: nothing listens on the port yet
        await sink.write(_envelopes(docs[:100]))
        await _until(lambda: sink.deliverer.last_error is not None)
        await sink.write(_envelopes(docs[100:]))
        assert server.count() == 0
        running = await start(server, port=port)
        try:
            await _until(lambda: server.count() == len(docs))
            await sink.close()
        finally:
            await running.stop()
        return server

    server = asyncio.run(go())
    assert sorted(server.documents) == sorted(d["event"]["id"] for d in docs)
    assert server.ecs_problems == []


def test_restart_resends_only_what_was_not_acknowledged_and_duplicates_are_absorbed(tmp_path: Path) -> None:
    """A sink abandoned without close (a crash) leaves its outbox on disk; the next one delivers it.
    Whatever both send is refused by ``_id`` (409) and counted as a duplicate, never indexed twice."""
    docs = real_documents()
    server = ContractServer()

    async def go() -> dict[str, int]:
        running = await start(server)
        try:
            cfg = config(running.url, install={"template": True}, outbox={"retry_initial_backoff_secs": 0.05})
            first = build_sink(cfg, _ctx(tmp_path))
            await first.health_check()
            await first.write(_envelopes(docs))  # queued on disk, delivery loop never started
            first.queue.close()  # the process dies here (no close(), no drain)
            # what the first process may have sent before dying: deliver part of it directly
            second = build_sink(cfg, _ctx(tmp_path))
            from .conftest import pending

            await second.deliverer.start()
            await second.deliverer.deliver(pending(docs[:40]))
            await second.start()
            await _until(lambda: server.count() == len(docs) and second.deliverer.counts["duplicate"] >= 40)
            counts: dict[str, int] = dict(second.deliverer.counts)
            await second.close()
            await first.deliverer.close()
            return counts
        finally:
            await running.stop()

    counts = asyncio.run(go())
    assert server.count() == len(docs)
    assert counts["duplicate"] == 40


def test_sigkill_mid_delivery_then_restart_delivers_everything_and_duplicates_carry_the_same_id(
    tmp_path: Path,
) -> None:
    """A real process is killed with SIGKILL while the server holds a stored-but-unanswered batch; a
    new sink on the same outbox delivers the rest. That batch is sent again: the cluster answers 409
    for each (same ``event.id`` → same ``_id``) and nothing is indexed twice."""
    import signal
    import sys

    from .kill_child import documents

    n = 200
    server = _set_up(ContractServer(respond_delay_secs=0.3))
    root = Path(__file__).resolve().parents[3]

    async def go() -> dict[str, int]:
        running = await start(server)
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.sinks.elasticsearch.kill_child",
            running.url,
            str(tmp_path),
            str(n),
            cwd=root,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert child.stdout is not None
            assert await asyncio.wait_for(child.stdout.readline(), 30) == b"written\n"
            await _until(lambda: server.count() >= 60 and server.holding > 0, timeout=30)
            child.send_signal(signal.SIGKILL)
            await child.wait()
            stored_before = server.count()
            assert 60 <= stored_before < n
            server.respond_delay_secs = 0.0
            cfg = config(running.url, outbox={"batch_max_events": 20, "retry_initial_backoff_secs": 0.05})
            second = build_sink(cfg, _ctx(tmp_path))
            await second.start()
            await _until(lambda: server.count() == n)
            await second.close()
            return dict(second.deliverer.counts)
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
            await running.stop()

    counts = asyncio.run(go())
    assert sorted(server.documents) == sorted(d["event"]["id"] for d in documents(n))
    assert counts["duplicate"] >= 20  # the batch held when the process died, re-sent, refused by _id
    assert counts["delivered"] + counts["duplicate"] >= n - 60

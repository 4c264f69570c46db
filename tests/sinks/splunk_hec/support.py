"""Helpers: real ECS documents, outbox records, a running contract server, waiting on conditions."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, ParamSpec

import orjson

from wgsiem.event import Envelope, EventMeta
from wgsiem.sinks.outbox.contract import Pending
from wgsiem.sinks.splunk_hec.config import SplunkHecSinkConfig

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
TOKEN = "8c2b7a52-5d1e-4f3b-9a7c-0d1e2f3a4b5c"
"""The test HEC token: must never show up in logs, errors or status."""

P = ParamSpec("P")


def aio(fn: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async test function in a fresh event loop."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


def real_documents() -> list[dict[str, Any]]:
    """The real ECS documents pinned by the schema goldens (one per source and action), in order."""
    paths = sorted((FIXTURES / "schema" / "ecs").glob("*/*.json"))
    return [orjson.loads(p.read_bytes()) for p in paths]


def alert_document() -> dict[str, Any]:
    """A real detection alert (``wireguard.detect``), see tests/fixtures/splunk_hec/README.md."""
    return orjson.loads((FIXTURES / "splunk_hec" / "alert.json").read_bytes())


def pending(docs: list[dict[str, Any]], start: int = 0) -> list[Pending]:
    return [Pending(start + i, str((d.get("event") or {}).get("id", "")), d) for i, d in enumerate(docs)]


def envelopes(docs: list[dict[str, Any]]) -> list[Envelope]:
    return [Envelope(d, EventMeta("test", time.time_ns())) for d in docs]


def config(url: str, **kwargs: Any) -> SplunkHecSinkConfig:
    return SplunkHecSinkConfig.model_validate(
        {"type": "splunk_hec", "endpoint": url, "token": TOKEN, **kwargs}
    )


async def wait_for(
    cond: Callable[[], bool | Awaitable[bool]], *, timeout: float = 20.0, what: str = ""
) -> None:
    """Wait until ``cond()`` holds (polling), else fail with ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if not isinstance(got, bool):
            got = await got
        if got:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.01)

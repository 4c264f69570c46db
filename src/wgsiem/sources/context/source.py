"""Runtime of the ``context`` source: an authenticated NDJSON ingest endpoint and file readers.

HTTP: ``POST /v1/ingest/<kind>`` with ``Authorization: Bearer <token>``. The token is checked (in
constant time) before the body is read; a body over ``max_body_bytes`` is refused with 413 unread; the
answer lists what was accepted and every bad line (``line N: field `x`: …``). The handler awaits
``emit``, so a slow pipeline slows the sender instead of filling memory.

Files: read once, or followed (rotation by inode change, truncation by a shrinking size), with the
position persisted so a restart neither loses nor repeats records.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from wgsiem.errors import ParseError, SourceError
from wgsiem.event import Envelope, EventMeta
from wgsiem.private_file import write_private
from wgsiem.sources.base import ReplayItem, SourceContext
from wgsiem.sources.context.ansible import ansible_results, run_time
from wgsiem.sources.context.attribution import PeerAttribution
from wgsiem.sources.context.config import ContextFileConfig, ContextSourceConfig
from wgsiem.sources.context.normalize import ansible_summary_doc, ansible_task_doc, record_doc
from wgsiem.sources.context.parser import KINDS, ParsedLine, detect_kind, parse_body
from wgsiem.sources.context.schema import AnsibleRun, ContextRecord

__all__ = ["ContextSource", "record_time"]

log = logging.getLogger("wgsiem.sources.context")

Emit = Callable[[list[Envelope]], Awaitable[None]]
CHUNK_LINES = 2000  # lines parsed between two yields to the event loop
HEAD_BYTES = 256  # a file's first bytes, hashed, tell a truncate-and-rewrite from an append


def _head_digest(head: bytes) -> str:
    return hashlib.blake2b(head, digest_size=8).hexdigest()


def record_time(record: ContextRecord) -> float | None:
    """The event time a record carries (an Ansible run: its first play's start)."""
    if isinstance(record, AnsibleRun):
        return run_time(record)[0]
    return record.time.timestamp()


class ContextSource:
    """Identity, EDR, change-ticket and config-management records → ECS events."""

    component_type = "context"

    def __init__(self, component_id: str, config: ContextSourceConfig, ctx: SourceContext) -> None:
        self.component_id = component_id
        self.config = config
        self.ctx = ctx
        self.telemetry = ctx.telemetry
        self.state_path = ctx.state_dir / "context" / f"{component_id}.json"
        self.positions: dict[str, dict[str, Any]] = {}  # path → {inode, offset, line, head}
        self.bound_port: int | None = None
        self.ready = asyncio.Event()
        self.accepted = 0
        self.rejected = 0
        self._emit: Emit | None = None
        self.attribution = PeerAttribution(ctx.peers)
        self._restore()

    # ------------------------------------------------------------ processing (live and replay)
    def process(self, payload: ContextRecord, at: float) -> list[Envelope]:
        """One record → its events (an Ansible run gives one per task result and one per host)."""
        created = time.time()
        peers = self.attribution
        ns = time.time_ns()
        if isinstance(payload, AnsibleRun):
            results, summaries = ansible_results(payload)
            docs = [
                ansible_task_doc(r, at, created)
                for r in results
                if not r.skipped
                and (r.changed or r.failed or r.unreachable or self.config.ansible_unchanged_tasks)
            ]
            docs += [ansible_summary_doc(s, at, created) for s in summaries]
        else:
            docs = [record_doc(payload, self.ctx.hostname, created, peers)]
        for doc in docs:
            doc.setdefault("observer", {})["hostname"] = self.ctx.hostname
        return [Envelope(d, EventMeta(self.component_id, ns)) for d in docs]

    def _ingest(self, parsed: list[ParsedLine], errors: list[ParseError], stage: str) -> list[Envelope]:
        self.telemetry.received += len(parsed) + len(errors)
        for err in errors:
            self.telemetry.error("parse", stage, err.render())
            self.telemetry.drop("invalid_record")
        self.accepted += len(parsed)
        self.rejected += len(errors)
        out: list[Envelope] = []
        for p in parsed:
            at = record_time(p.record) or time.time()
            out.extend(self.process(p.record, at))
        return out

    async def _send(self, envs: list[Envelope]) -> None:
        if envs and self._emit is not None:
            self.telemetry.sent += len(envs)
            await self._emit(envs)

    async def _ingest_body(
        self, data: bytes, kind: str | None, origin: str, first_line: int, stage: str
    ) -> tuple[int, list[ParseError]]:
        """Parse, normalise and emit ``data`` a chunk of lines at a time, yielding to the event loop
        between chunks: an 8 MiB body must not stall every other source of the process for seconds."""
        accepted = 0
        all_errors: list[ParseError] = []
        pos, line = 0, first_line
        while pos < len(data):
            end = len(data)
            if not (pos == 0 and data.lstrip()[:2] in (b"{\n", b"{\r")):  # a pretty Ansible document: whole
                cut = pos
                for _ in range(CHUNK_LINES):
                    cut = data.find(b"\n", cut) + 1
                    if cut == 0:
                        cut = len(data)
                        break
                end = cut
            chunk = data[pos:end]
            parsed, errors = parse_body(chunk, kind, origin, first_line=line)
            await self._send(self._ingest(parsed, errors, stage))
            accepted += len(parsed)
            all_errors += errors
            line += chunk.count(b"\n")
            pos = end
            await asyncio.sleep(0)
        return accepted, all_errors

    # ------------------------------------------------------------ HTTP
    def _app(self) -> web.Application:
        http = self.config.http
        assert http is not None
        # one byte over the limit is what makes aiohttp answer 413 for an over-long body
        app = web.Application(client_max_size=http.max_body_bytes)
        app.router.add_post("/v1/ingest/{kind}", self._handle)
        app.router.add_get("/v1/health", self._health)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    def _authorized(self, request: web.Request) -> bool:
        assert self.config.http is not None
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        expected = self.config.http.token.get_secret_value().encode()
        # digests first: equal lengths, so neither the token's bytes nor its length leak through timing
        ok = hmac.compare_digest(
            hashlib.sha256(given.strip().encode()).digest(), hashlib.sha256(expected).digest()
        )
        return scheme.lower() == "bearer" and ok

    async def _handle(self, request: web.Request) -> web.Response:
        http = self.config.http
        assert http is not None
        if not self._authorized(request):
            self.telemetry.error("unauthorized", "http", f"rejected request from {request.remote}")
            return web.json_response(
                {"error": "missing or wrong bearer token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="wgsiem"'},
            )
        kind = request.match_info["kind"]
        if kind not in KINDS:
            return web.json_response(
                {"error": f"unknown kind {kind!r}; use one of {', '.join(KINDS)}"}, status=404
            )
        if request.content_length is not None and request.content_length > http.max_body_bytes:
            self.telemetry.drop("body_too_large")
            return web.json_response({"error": f"body over max_body_bytes={http.max_body_bytes}"}, status=413)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.telemetry.drop("body_too_large")
            return web.json_response({"error": f"body over max_body_bytes={http.max_body_bytes}"}, status=413)
        accepted, errors = await self._ingest_body(body, kind, f"http:{kind}", 1, "http")
        status = 400 if errors and not accepted else 200
        shown = errors[: http.max_errors_reported]
        return web.json_response(
            {
                "accepted": accepted,
                "rejected": len(errors),
                "errors": [e.what + (f" — {e.fix}" if e.fix else "") for e in shown],
                "errors_truncated": len(errors) > len(shown),
            },
            status=status,
        )

    def _ssl(self) -> ssl.SSLContext | None:
        http = self.config.http
        assert http is not None
        if not http.tls_cert_path:
            return None
        sslctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            sslctx.load_cert_chain(http.tls_cert_path, http.tls_key_path)
        except (OSError, ssl.SSLError) as exc:
            raise SourceError(
                f"cannot load TLS certificate {http.tls_cert_path} / key: {exc}",
                fix="point tls_cert_path and tls_key_path at a readable PEM chain and its key",
            ) from exc
        return sslctx

    # ------------------------------------------------------------ files
    def _restore(self) -> None:
        try:
            self.positions = orjson.loads(self.state_path.read_bytes())
        except FileNotFoundError:
            return
        except (ValueError, TypeError) as exc:
            self.telemetry.error(
                "state_corrupt", "restore", f"{self.state_path} unreadable ({exc}); starting over"
            )
            self.positions = {}

    def save_state(self) -> None:
        write_private(self.state_path, orjson.dumps(self.positions))

    def read_new(self, fc: ContextFileConfig, final: bool) -> tuple[bytes, int, dict[str, Any]] | None:
        """What was appended to ``fc.path`` since the saved position — complete lines only, unless
        ``final`` (a read-once file's last line may lack its newline) — with the first line's number and
        the position after it. Only file I/O: safe in a worker thread."""
        path = fc.path
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        pos = self.positions.get(path)
        with open(path, "rb") as f:
            # truncated and rewritten past the old offset? the first bytes tell
            if (
                pos is not None
                and pos["offset"]
                and pos["inode"] == st.st_ino
                and st.st_size >= pos["offset"]
                and _head_digest(f.read(HEAD_BYTES)[: pos["offset"]]) != pos.get("head")
            ):
                pos = None
            if pos is None or pos["inode"] != st.st_ino or st.st_size < pos["offset"]:
                pos = {"inode": st.st_ino, "offset": 0, "line": 0}  # new, rotated or truncated
            if st.st_size == pos["offset"]:
                return b"", pos["line"] + 1, pos
            f.seek(0)
            head = f.read(HEAD_BYTES)
            f.seek(pos["offset"])
            data = f.read()
        whole = pos["offset"] == 0 and data.lstrip()[:2] in (b"{\n", b"{\r")
        if not whole and not final:
            data = data[: data.rfind(b"\n") + 1]
        elif whole and not final and not data.rstrip().endswith(b"}"):
            data = b""  # a pretty-printed Ansible document still being written
        offset = pos["offset"] + len(data)
        after = {
            "inode": st.st_ino,
            "offset": offset,
            "line": pos["line"] + data.count(b"\n"),
            "head": _head_digest(head[:offset]),
        }
        return data, pos["line"] + 1, after

    async def ingest_file(self, fc: ContextFileConfig, final: bool) -> None:
        got = await asyncio.to_thread(self.read_new, fc, final)
        if got is None:
            return
        data, first_line, after = got
        if data:
            await self._ingest_body(data, fc.kind, fc.path, first_line, "file")
        self.positions[fc.path] = after

    async def _files(self, stop: asyncio.Event) -> None:
        for fc in self.config.files:
            if not fc.follow:
                await self.ingest_file(fc, True)
        followed = [fc for fc in self.config.files if fc.follow]
        if not followed:
            return
        interval = min(fc.poll_interval_secs for fc in followed)
        while not stop.is_set():
            for fc in followed:
                await self.ingest_file(fc, False)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    # ------------------------------------------------------------ run
    async def run(self, emit: Emit, stop: asyncio.Event) -> None:
        self._emit = emit
        runner: web.AppRunner | None = None
        try:
            if self.config.http is not None:
                http = self.config.http
                runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
                await runner.setup()
                site = web.TCPSite(runner, http.listen_address, http.listen_port, ssl_context=self._ssl())
                try:
                    await site.start()
                except OSError as exc:
                    raise SourceError(
                        f"cannot listen on {http.listen_address}:{http.listen_port}: {exc}",
                        fix="pick a free port or address in http.listen_port / http.listen_address",
                    ) from exc
                server = site._server
                sockets = getattr(server, "sockets", None) or []
                self.bound_port = sockets[0].getsockname()[1] if sockets else http.listen_port
                log.info("%s: listening on %s:%s", self.component_id, http.listen_address, self.bound_port)
            self.ready.set()
            await self._files(stop)
            await stop.wait()
        finally:
            if runner is not None:
                await runner.cleanup()

    def status(self) -> dict[str, Any]:
        return {
            "listening": f"{self.config.http.listen_address}:{self.bound_port}" if self.config.http else None,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "files": {p: {"offset": v["offset"], "line": v["line"]} for p, v in self.positions.items()},
        }

    # ------------------------------------------------------------ replay
    @staticmethod
    def replay_detect(path: Path, head: bytes) -> bool:
        if path.suffix not in (".ndjson", ".jsonl", ".json"):
            return False
        first = head.lstrip().split(b"\n", 1)[0].strip()
        if first == b"{":
            return b'"plays"' in head or b'"custom_stats"' in head
        try:
            obj = orjson.loads(first)
        except orjson.JSONDecodeError:
            return False
        return isinstance(obj, dict) and detect_kind(obj) in KINDS

    @staticmethod
    def replay_read(path: Path) -> Iterator[ReplayItem]:
        parsed, errors = parse_body(path.read_bytes(), None, str(path))
        items: list[tuple[int, ReplayItem]] = []
        for p in parsed:
            t = record_time(p.record)
            items.append((p.line, ReplayItem(t if t is not None else 0.0, p.record, f"{path}:{p.line}")))
        last = 0.0
        by_line = dict(items)
        for e in errors:
            line = e.location.line if e.location and e.location.line else 0
            by_line[line] = ReplayItem(0.0, e, f"{path}:{line}")
        for _line, item in sorted(by_line.items()):
            if isinstance(item.payload, ParseError):  # a bad line takes the time of the one before it
                item = ReplayItem(last, item.payload, item.location)
            last = item.time
            yield item

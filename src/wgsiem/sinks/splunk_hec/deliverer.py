"""``SplunkHecDeliverer``: the outbox's :class:`~wgsiem.sinks.outbox.contract.Deliverer` for Splunk HEC.

Why aiohttp and not a Splunk client: Splunk's Python SDK (``splunk-sdk``, ``splunklib``) talks to the
management REST API on port 8089 (searches, inputs, KV store); it has no HEC sender, and the small
HEC packages on PyPI are synchronous (``requests``) and batch in threads. HEC itself is three plain
HTTP endpoints, so the protocol lives here, on the HTTP client the rest of wgsiem already uses.

What one :meth:`deliver` does, following Splunk's HEC reference ("Format events for HTTP Event
Collector", "About HTTP Event Collector Indexer Acknowledgment", the HEC status codes):

1. encode each record (:mod:`.encoder`); a record that cannot be encoded is rejected (parked);
2. pack the objects into requests of at most ``max_request_bytes`` (uncompressed), gzip them, POST
   them to ``/services/collector/event`` in order, with ``Authorization: Splunk <token>`` (and
   ``X-Splunk-Request-Channel`` when ``ack`` is on);
3. sort each reply:

   * 200 code 0 — accepted (with ``ackId`` when acknowledgement is on);
   * 400 with a per-event code (6 invalid data format, 12/13 event field missing/blank, 15 indexed
     fields) or 413 — **bisect**: a request of one event is rejected with Splunk's reason; a larger one
     is split (at ``invalid-event-number`` when Splunk names it: before / the named event / after;
     else in halves) and each part sent again, so the good events are delivered and only the bad ones
     parked. Splunk may have indexed the events before the named one already: they are sent again,
     with the same ``event_id`` (at-least-once; searches dedup on it);
   * 401/403 (token missing, invalid or disabled), 400 code 7 (index not allowed), 10/11/14 (channel,
     acknowledgement), 429, 5xx (code 8 internal error, code 9 server busy), connection errors,
     timeouts — :class:`RetryableDeliveryError`: nothing is dropped, the outbox retries with backoff
     (``Retry-After`` honoured); the error with what to fix is in :meth:`status`. When some requests of
     this call were already accepted, the rest is returned as ``retry`` instead, so the accepted part
     is not sent twice;
4. with ``ack: true``, poll ``/services/collector/ack`` until every accepted request is acknowledged;
   the events of a request not acknowledged within ``ack_timeout_secs`` are returned as ``retry``.

The token is never logged and never part of an error or of :meth:`status`.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import ssl
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from wgsiem.errors import WgsiemError
from wgsiem.sinks.outbox.contract import DeliveryReport, Pending, RetryableDeliveryError

from .config import SplunkHecSinkConfig
from .encoder import HecEncodeError, HecEncoder

__all__ = ["EVENT_PATH", "SplunkHecDeliverer", "parse_reply"]

log = logging.getLogger(__name__)

EVENT_PATH = "/services/collector/event"
ACK_PATH = "/services/collector/ack"
HEALTH_PATH = "/services/collector/health"

_PER_EVENT_CODES = frozenset({6, 12, 13, 15})
"""400 codes that name one bad event (invalid data format, event field missing/blank, indexed fields)."""
_MAX_ACK_POLL_SECS = 10.0
_THREAD_COMPRESS_BYTES = 64 * 1024

_AUTH_FIX = (
    "check the sink's token: it must be a valid, enabled HEC token (Settings > Data inputs > HTTP Event "
    "Collector); events stay in the outbox until it works"
)


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    code: int | None
    text: str
    invalid_event: int | None = None
    ack_id: int | None = None
    body: Any = None


def parse_reply(status: int, raw: bytes) -> _Reply:
    """A HEC answer (``{"text", "code", "invalid-event-number", "ackId"}`` or anything else) — pure,
    never raises: a body that is not that JSON keeps only its first 200 characters as ``text``."""
    try:
        parsed = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        return _Reply(status, None, raw[:200].decode("utf-8", "replace"))
    c, n, a = parsed.get("code"), parsed.get("invalid-event-number"), parsed.get("ackId")
    return _Reply(
        status,
        c if isinstance(c, int) and not isinstance(c, bool) else None,
        str(parsed.get("text") or "")[:500],
        n if isinstance(n, int) and not isinstance(n, bool) else None,
        a if isinstance(a, int) and not isinstance(a, bool) else None,
        parsed,
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _acked(reply: _Reply) -> list[int]:
    """The ids an ``/ack`` reply (``{"acks": {"0": true, "1": false}}``) reports as indexed."""
    acks = reply.body.get("acks") if isinstance(reply.body, dict) else None
    if not isinstance(acks, dict):
        return []
    out = []
    for key, done in acks.items():
        if done is True:
            try:
                out.append(int(key))
            except ValueError:
                continue
    return out


class SplunkHecDeliverer:
    """Delivers records to one HEC endpoint (see the module docstring)."""

    def __init__(self, config: SplunkHecSinkConfig, *, hostname: str) -> None:
        self.config = config
        self.encoder = HecEncoder(
            source=config.source,
            default_host=hostname,
            host=config.host,
            index=config.index,
            sourcetype_prefix=config.sourcetype_prefix,
            schema=config.output_schema,
            indexed_fields=config.indexed_fields,
        )
        self._mapper = self.encoder.mapper()
        self.channel = config.channel or str(uuid.uuid4())
        self._session: aiohttp.ClientSession | None = None
        self._auth = f"Splunk {config.token.get_secret_value()}"
        # facts for status()
        self.requests = 0
        self.events_accepted = 0
        self.events_rejected = 0
        self.splits = 0
        self.acks_pending = 0
        self.ack_timeouts = 0
        self.ack_missing = False
        self.last_status: int | None = None
        self.last_code: int | None = None
        self.last_text: str | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.auth_error: str | None = None
        self.healthy: bool | None = None

    # ---- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._session is not None:
            return
        cfg = self.config
        ssl_arg: ssl.SSLContext | bool
        if not cfg.endpoint.startswith("https:"):
            ssl_arg = True  # plain http: unused
        elif cfg.tls_verify:
            ssl_arg = ssl.create_default_context(cafile=cfg.tls_ca_file)
        else:
            ssl_arg = False
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ssl_arg, limit=4),
            timeout=aiohttp.ClientTimeout(total=cfg.request_timeout_secs),
            headers={"User-Agent": "wgsiem-splunk-hec"},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self, *, gzip_body: bool = False) -> dict[str, str]:
        headers = {"Authorization": self._auth, "Content-Type": "application/json"}
        if gzip_body:
            headers["Content-Encoding"] = "gzip"
        if self.config.ack:
            headers["X-Splunk-Request-Channel"] = self.channel
        return headers

    async def _request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], *, check: bool = True
    ) -> _Reply:
        """One HTTP exchange; transport failures become :class:`RetryableDeliveryError`."""
        if self._session is None:
            await self.start()
        assert self._session is not None
        url = self.config.endpoint + path
        try:
            async with self._session.request(method, url, data=body, headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after = _retry_after(resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = type(exc).__name__ if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
            raise RetryableDeliveryError(
                f"Splunk HEC {self.config.endpoint} unreachable: {reason}",
                fix="check that Splunk is up and HEC enabled on that port; events wait in the outbox",
            ) from None
        reply = parse_reply(status, raw)
        self.last_status, self.last_code, self.last_text = status, reply.code, reply.text
        if check:
            self._raise_for(reply, retry_after)
        return reply

    def _raise_for(self, r: _Reply, retry_after: float | None) -> None:
        """Raise :class:`RetryableDeliveryError` for every reply that is not per-event or success."""
        s, code = r.status, r.code
        what = f"Splunk HEC replied {s}" + (f" code {code}" if code is not None else "") + f": {r.text!r}"
        if s == 200 or s == 413 or (s == 400 and code in _PER_EVENT_CODES):
            if s == 200:
                self.auth_error = None
            return
        fix: str
        if s in (401, 403):
            fix = _AUTH_FIX
            self.auth_error = what
        elif s == 400 and code == 7:
            fix = (
                f"the token may not write to index {self.config.index!r}: "
                "add it to the token's allowed indexes"
            )
        elif s == 400 and code in (10, 11):
            fix = "the token has indexer acknowledgement on: keep `ack: true` (a channel is sent then)"
        elif s == 400 and code == 14:
            fix = "indexer acknowledgement is off for this token: set `ack: false` or enable it on the token"
        elif s == 429 or (s == 503 and code == 9) or s >= 500:
            fix = "Splunk is busy or failing; delivery is retried with backoff"
        elif s == 404:
            fix = "HEC is not at this endpoint: check the URL, port (8088) and that HEC is enabled"
        else:
            fix = "delivery is retried with backoff"
        raise RetryableDeliveryError(what, retry_after_secs=retry_after, fix=fix)

    # ---- health check -------------------------------------------------------------------------------

    async def health_check(self) -> None:
        """``GET /services/collector/health`` (code 17), then an empty POST that must be refused with
        code 5 "No data": Splunk checks the token before the body, so this proves the token without
        indexing anything (the same probe Amazon Kinesis Firehose makes)."""
        try:
            reply = await self._request("GET", HEALTH_PATH, None, {}, check=False)
            if reply.status != 200:
                raise WgsiemError(
                    f"Splunk HEC unhealthy: {reply.status} code {reply.code}: {reply.text!r}",
                    fix="check HEC on the Splunk side (queues full, acknowledgement service down)",
                )
            probe = await self._request("POST", EVENT_PATH, b"", self._headers(), check=False)
            if probe.status in (401, 403):
                self.auth_error = f"Splunk HEC replied {probe.status} code {probe.code}: {probe.text!r}"
                raise WgsiemError(f"Splunk HEC refused the token: {self.auth_error}", fix=_AUTH_FIX)
            if probe.status == 429 or probe.status >= 500:
                raise WgsiemError(
                    f"Splunk HEC busy, token not checked: {probe.status} code {probe.code}: {probe.text!r}",
                    fix="Splunk is overloaded or failing; delivery retries with backoff once started",
                )
            if not (probe.status == 400 and probe.code == 5):
                raise WgsiemError(
                    f"Splunk HEC token check: expected 400 code 5 'No data', got {probe.status} "
                    f"code {probe.code}: {probe.text!r}",
                    fix="check that the endpoint is a Splunk HEC (port 8088 by default)",
                )
        except RetryableDeliveryError as exc:
            self.healthy = False
            raise WgsiemError(f"Splunk HEC health check failed: {exc.what}", fix=exc.fix) from None
        except WgsiemError:
            self.healthy = False
            raise
        self.healthy = True

    # ---- delivery -----------------------------------------------------------------------------------

    def _encode(self, batch: list[Pending], report: DeliveryReport) -> list[tuple[int, bytes]]:
        lines: list[tuple[int, bytes]] = []
        encode, mapper = self.encoder.encode, self._mapper
        for p in batch:
            try:
                lines.append((p.seq, encode(p.doc, mapper)))
            except HecEncodeError as exc:
                report.rejected[p.seq] = exc.what
                self.events_rejected += 1
        return lines

    def _chunks(self, lines: list[tuple[int, bytes]]) -> list[list[tuple[int, bytes]]]:
        limit = self.config.max_request_bytes
        chunks: list[list[tuple[int, bytes]]] = []
        cur: list[tuple[int, bytes]] = []
        size = 0
        for item in lines:
            n = len(item[1]) + 1
            if cur and size + n > limit:
                chunks.append(cur)
                cur, size = [], 0
            cur.append(item)
            size += n
        if cur:
            chunks.append(cur)
        return chunks

    async def body_of(self, chunk: list[tuple[int, bytes]]) -> tuple[bytes, bool]:
        """The request body (concatenated event objects, gzip-ed if configured) and whether it is gzip.
        A large body is compressed in a worker thread (zlib releases the GIL): the event loop keeps
        serving the pipeline meanwhile, on the other core."""
        body = b"\n".join(line for _, line in chunk)
        if self.config.compression != "gzip":
            return body, False
        level = self.config.gzip_level
        if len(body) < _THREAD_COMPRESS_BYTES:
            return gzip.compress(body, compresslevel=level, mtime=0), True
        return await asyncio.to_thread(gzip.compress, body, level, mtime=0), True

    async def _post(self, chunk: list[tuple[int, bytes]]) -> _Reply:
        body, gz = await self.body_of(chunk)
        self.requests += 1
        return await self._request("POST", EVENT_PATH, body, self._headers(gzip_body=gz))

    async def deliver(self, batch: list[Pending]) -> DeliveryReport:
        report = DeliveryReport()
        work = deque(self._chunks(self._encode(batch, report)))
        acks: dict[int, list[int]] = {}
        accepted_any = False
        while work:
            chunk = work.popleft()
            try:
                reply = await self._post(chunk)
            except RetryableDeliveryError as exc:
                self._note_error(exc)
                if not accepted_any:
                    raise
                # part of this call is in Splunk already: retry only the rest
                report.retry.extend(seq for c in (chunk, *work) for seq, _ in c)
                work.clear()
                break
            if reply.status == 200:
                accepted_any = True
                self.events_accepted += len(chunk)
                if self.config.ack:
                    if reply.ack_id is not None:
                        acks[reply.ack_id] = [seq for seq, _ in chunk]
                    elif not self.ack_missing:
                        self.ack_missing = True
                        log.warning(
                            "splunk_hec %s: ack is on but HEC returned no ackId: the token has "
                            "indexer acknowledgement off; events count as delivered when accepted",
                            self.config.endpoint,
                        )
                continue
            # a per-event refusal (400 code 6/12/13/15) or 413: bisect
            reason = f"HEC {reply.status}" + (f" code {reply.code}" if reply.code is not None else "")
            reason += f": {reply.text}"
            if len(chunk) == 1:
                report.rejected[chunk[0][0]] = reason
                self.events_rejected += 1
                continue
            self.splits += 1
            n = reply.invalid_event
            if reply.status == 400 and n is not None and 0 <= n < len(chunk):
                parts = [chunk[:n], chunk[n : n + 1], chunk[n + 1 :]]
            else:
                mid = len(chunk) // 2
                parts = [chunk[:mid], chunk[mid:]]
            for part in reversed(parts):
                if part:
                    work.appendleft(part)
        if acks:
            report.retry.extend(await self._wait_acks(acks))
        return report

    async def _wait_acks(self, acks: dict[int, list[int]]) -> list[int]:
        """Poll ``/ack`` until every id is acknowledged; returns the seqs of those that timed out."""
        cfg = self.config
        pending = dict(acks)
        self.acks_pending += len(pending)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cfg.ack_timeout_secs
        delay = cfg.ack_poll_interval_secs
        try:
            while pending:
                left = deadline - loop.time()
                if left <= 0:
                    break
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 2, _MAX_ACK_POLL_SECS)
                body = orjson.dumps({"acks": sorted(pending)})
                try:
                    reply = await self._request("POST", ACK_PATH, body, self._headers())
                except RetryableDeliveryError as exc:
                    self._note_error(exc)
                    continue
                for ack_id in _acked(reply):
                    if ack_id in pending:
                        del pending[ack_id]
                        self.acks_pending -= 1
        finally:
            self.acks_pending -= len(pending)
        if pending:
            self.ack_timeouts += len(pending)
            msg = (
                f"{len(pending)} HEC request(s) not acknowledged within {cfg.ack_timeout_secs}s; "
                "their events are sent again"
            )
            self.last_error, self.last_error_at = msg, time.time()
            log.warning("splunk_hec %s: %s", cfg.endpoint, msg)
        return [seq for seqs in pending.values() for seq in seqs]

    def _note_error(self, exc: WgsiemError) -> None:
        self.last_error, self.last_error_at = exc.render(), time.time()

    # ---- status -------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        cfg = self.config
        out: dict[str, Any] = {
            "endpoint": cfg.endpoint,
            "index": cfg.index,
            "schema": cfg.output_schema,
            "compression": cfg.compression,
            "ack": cfg.ack,
            "healthy": self.healthy,
            "requests": self.requests,
            "events_accepted": self.events_accepted,
            "events_rejected": self.events_rejected,
            "splits": self.splits,
            "last_response": {"status": self.last_status, "code": self.last_code, "text": self.last_text},
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "auth_error": self.auth_error,
        }
        if cfg.ack:
            out.update(
                channel=self.channel,
                acks_pending=self.acks_pending,
                ack_timeouts=self.ack_timeouts,
                ack_missing=self.ack_missing,
            )
        return out

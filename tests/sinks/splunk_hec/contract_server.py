"""A Splunk HTTP Event Collector that implements the documented HEC behaviour strictly (aiohttp).

Splunk cannot run here, so the deliverer is tested against this server. What it implements, from
Splunk's docs ("Format events for HTTP Event Collector", "About HTTP Event Collector Indexer
Acknowledgment", the HEC status code table reproduced in Splunk's troubleshooting pages):

* token auth, checked before anything else: ``Authorization: Splunk <token>``; missing → 401 code 2
  "Token is required"; another scheme → 401 code 3 "Invalid authorization"; unknown → 403 code 4
  "Invalid token"; disabled → 403 code 1 "Token disabled";
* a token with acknowledgement on requires a channel (``X-Splunk-Request-Channel`` header or
  ``?channel=``): missing → 400 code 10 "Data channel is missing", not a GUID → 400 code 11 "Invalid
  data channel"; a successful POST answers ``{"text":"Success","code":0,"ackId":N}`` with N counting
  from 0 per channel; ``/services/collector/ack`` answers ``{"acks":{"N":true|false}}`` and forgets an
  id once it reported it true; on a token without acknowledgement ``/ack`` is 400 code 14;
* bodies: ``Content-Encoding: gzip`` is inflated; empty → 400 code 5 "No data"; the body is event
  objects concatenated (whitespace between them allowed, no array); the first bad one ends the request
  with 400 and ``invalid-event-number`` (0-based): unparsable or wrong types → code 6 "Invalid data
  format", no ``event`` → 12 "Event field is required", blank ``event`` → 13 "Event field cannot be
  blank", ``fields`` not flat strings → 15 "Error in handling indexed fields", an index the token may
  not write → 7 "Incorrect index". Events before the bad one are indexed (``index_before_invalid``,
  what Splunk users report; set it False to model a server that drops the whole request);
* ``GET /services/collector/health`` → 200 code 17 "HEC is healthy" / 503 code 18;
* injections: ``busy`` (503 code 9 "Server is busy"), ``throttle`` (429 with ``Retry-After``),
  ``reject`` (a predicate marking an event invalid → code 6), ``hold_acks`` (requests whose acks stay
  false), ``max_content_length`` (413), and :meth:`stop` / :meth:`start` for an outage.
"""

from __future__ import annotations

import gzip
import json
import ssl
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_DECODER = json.JSONDecoder()
_META_KEYS = frozenset({"time", "host", "source", "sourcetype", "index", "fields", "event"})


@dataclass
class Token:
    value: str
    enabled: bool = True
    ack: bool = False
    indexes: frozenset[str] | None = None
    """Indexes the token may write (None: any)."""
    default_index: str = "main"


@dataclass
class Indexed:
    index: str
    host: str | None
    source: str | None
    sourcetype: str | None
    time: float | None
    fields: dict[str, Any]
    event: Any
    channel: str | None


@dataclass
class Channel:
    next_id: int = 0
    done: set[int] = field(default_factory=set)
    held: set[int] = field(default_factory=set)


def _reply(status: int, text: str, code: int, **extra: Any) -> web.Response:
    return web.json_response({"text": text, "code": code, **extra}, status=status)


class HecServer:
    """See the module docstring. ``events`` holds what was indexed, in order."""

    def __init__(
        self, tokens: list[Token], *, port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.tokens = {t.value: t for t in tokens}
        self.port = port
        self.ssl_context = ssl_context
        self.events: list[Indexed] = []
        self.channels: dict[str, Channel] = {}
        self.requests: list[tuple[str, int, int | None]] = []
        """(path, status, code) of every request."""
        self.gzip_requests = 0
        self.busy = 0
        self.busy_after = 0
        """Let this many event requests through before ``busy`` starts counting."""
        self.throttle = 0
        self.retry_after_secs = 1
        self.reject: Callable[[dict[str, Any]], bool] | None = None
        self.hold_acks = 0
        """The next N accepted requests get acks that stay false."""
        self.healthy = True
        self.index_before_invalid = True
        self.max_content_length = 800 * 1024 * 1024
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    async def start(self) -> str:
        app = web.Application(client_max_size=1024**3)
        app.router.add_post("/services/collector/event", self._event)
        app.router.add_post("/services/collector", self._event)
        app.router.add_post("/services/collector/ack", self._ack)
        app.router.add_get("/services/collector/health", self._health)
        self._runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, "127.0.0.1", self.port, reuse_address=True, ssl_context=self.ssl_context
        )
        await site.start()
        if self.port == 0:
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def release_acks(self) -> None:
        for ch in self.channels.values():
            ch.done |= ch.held
            ch.held.clear()

    def ids(self) -> list[str]:
        """``fields.event_id`` of every indexed event, in order (duplicates kept)."""
        return [str(e.fields.get("event_id")) for e in self.events]

    # ---- handlers ---------------------------------------------------------------------------------

    def _log(self, path: str, resp: web.Response) -> web.Response:
        code = None
        if resp.body:
            try:
                code = json.loads(bytes(resp.body)).get("code")  # type: ignore[arg-type]
            except (ValueError, AttributeError):
                code = None
        self.requests.append((path, resp.status, code))
        return resp

    def _auth(self, request: web.Request) -> Token | web.Response:
        header = request.headers.get("Authorization")
        if header is None:
            return _reply(401, "Token is required", 2)
        scheme, _, value = header.partition(" ")
        if scheme != "Splunk" or not value:
            return _reply(401, "Invalid authorization", 3)
        token = self.tokens.get(value.strip())
        if token is None:
            return _reply(403, "Invalid token", 4)
        if not token.enabled:
            return _reply(403, "Token disabled", 1)
        return token

    def _channel(self, request: web.Request, token: Token) -> str | web.Response | None:
        name = request.headers.get("X-Splunk-Request-Channel") or request.query.get("channel")
        if not token.ack:
            return name
        if not name:
            return _reply(400, "Data channel is missing", 10)
        try:
            uuid.UUID(name)
        except ValueError:
            return _reply(400, "Invalid data channel", 11)
        return name

    async def _health(self, request: web.Request) -> web.Response:
        if self.healthy:
            return self._log(request.path, _reply(200, "HEC is healthy", 17))
        return self._log(request.path, _reply(503, "HEC is unhealthy, queues are full", 18))

    async def _event(self, request: web.Request) -> web.Response:
        return self._log(request.path, await self._event_inner(request))

    async def _event_inner(self, request: web.Request) -> web.Response:
        token = self._auth(request)
        if isinstance(token, web.Response):
            return token
        channel = self._channel(request, token)
        if isinstance(channel, web.Response):
            return channel
        if self.throttle > 0:
            self.throttle -= 1
            return web.json_response(
                {"text": "Too many requests", "code": 9},
                status=429,
                headers={"Retry-After": str(self.retry_after_secs)},
            )
        if self.busy > 0 and self.busy_after > 0:
            self.busy_after -= 1
        elif self.busy > 0:
            self.busy -= 1
            return _reply(503, "Server is busy", 9)
        raw = await request.read()
        if len(raw) > self.max_content_length:
            return web.json_response({"text": "Content too large"}, status=413)
        if request.headers.get("Content-Encoding", "").lower() == "gzip":
            self.gzip_requests += 1
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error):
                return _reply(400, "Invalid data format", 6)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _reply(400, "Invalid data format", 6, **{"invalid-event-number": 0})
        if not text.strip():
            return _reply(400, "No data", 5)
        accepted: list[Indexed] = []
        pos, n = 0, 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                break
            try:
                obj, pos = _DECODER.raw_decode(text, pos)
            except json.JSONDecodeError:
                return self._invalid(accepted, 6, "Invalid data format", n)
            problem = self._check(obj, token)
            if problem is not None:
                return self._invalid(accepted, problem[0], problem[1], n)
            accepted.append(
                Indexed(
                    index=obj.get("index") or token.default_index,
                    host=obj.get("host"),
                    source=obj.get("source"),
                    sourcetype=obj.get("sourcetype"),
                    time=float(obj["time"]) if "time" in obj else None,
                    fields=dict(obj.get("fields") or {}),
                    event=obj["event"],
                    channel=channel,
                )
            )
            n += 1
        self.events.extend(accepted)
        if not token.ack:
            return _reply(200, "Success", 0)
        assert isinstance(channel, str)
        ch = self.channels.setdefault(channel, Channel())
        ack_id = ch.next_id
        ch.next_id += 1
        if self.hold_acks > 0:
            self.hold_acks -= 1
            ch.held.add(ack_id)
        else:
            ch.done.add(ack_id)
        return _reply(200, "Success", 0, ackId=ack_id)

    def _invalid(self, accepted: list[Indexed], code: int, text: str, n: int) -> web.Response:
        if self.index_before_invalid:
            self.events.extend(accepted)
        return _reply(400, text, code, **{"invalid-event-number": n})

    def _check(self, obj: Any, token: Token) -> tuple[int, str] | None:
        if not isinstance(obj, dict):
            return 6, "Invalid data format"
        if set(obj) - _META_KEYS:
            return 6, "Invalid data format"
        if "event" not in obj:
            return 12, "Event field is required"
        ev = obj["event"]
        if ev is None or ev == "" or ev == {}:
            return 13, "Event field cannot be blank"
        t = obj.get("time")
        if "time" in obj:
            if isinstance(t, bool) or not isinstance(t, int | float | str):
                return 6, "Invalid data format"
            try:
                float(t)
            except ValueError:
                return 6, "Invalid data format"
        for key in ("host", "source", "sourcetype", "index"):
            if key in obj and not isinstance(obj[key], str):
                return 6, "Invalid data format"
        if "fields" in obj:
            fields = obj["fields"]
            if not isinstance(fields, dict):
                return 15, "Error in handling indexed fields"
            for value in fields.values():
                if isinstance(value, list):
                    if not all(isinstance(v, str) for v in value):
                        return 15, "Error in handling indexed fields"
                elif not isinstance(value, str):
                    return 15, "Error in handling indexed fields"
        index = obj.get("index") or token.default_index
        if token.indexes is not None and index not in token.indexes:
            return 7, "Incorrect index"
        if self.reject is not None and self.reject(obj):
            return 6, "Invalid data format"
        return None

    async def _ack(self, request: web.Request) -> web.Response:
        token = self._auth(request)
        if isinstance(token, web.Response):
            return self._log(request.path, token)
        if not token.ack:
            return self._log(request.path, _reply(400, "ACK is disabled", 14))
        channel = self._channel(request, token)
        if isinstance(channel, web.Response):
            return self._log(request.path, channel)
        try:
            body = json.loads(await request.read())
            ids = body["acks"]
            if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return self._log(request.path, _reply(400, "Invalid data format", 6))
        assert isinstance(channel, str)
        ch = self.channels.setdefault(channel, Channel())
        out: dict[str, bool] = {}
        for i in ids:
            done = i in ch.done
            out[str(i)] = done
            if done:
                ch.done.discard(i)  # Splunk forgets an ack once it reported it
        resp = web.json_response({"acks": out})
        self.requests.append((request.path, 200, None))
        return resp

"""``WebhookDeliverer``: templated JSON over HTTP(S) with aiohttp (the outbox does retry and order).

Answers and what becomes of the records:

* 2xx (and 1xx/3xx, which aiohttp does not follow for POST) → delivered;
* 429, 5xx, 408, a connection error or a timeout → :class:`RetryableDeliveryError` for the whole
  request (batch mode) or ``retry`` for that event (event mode); ``Retry-After`` (seconds) is passed on;
* any other 4xx → ``rejected`` with the status and the start of the answer (parked by the outbox).

The auth header value is a ``SecretStr``: it is put on the wire and nowhere else. Every message this
module produces (errors, status) goes through :meth:`WebhookDeliverer._scrub`, which also removes
userinfo from URLs and the secret value should a server echo it back.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

from wgsiem.errors import WgsiemError
from wgsiem.sinks.outbox.contract import DeliveryReport, Pending, RetryableDeliveryError

from .config import WebhookSinkConfig
from .template import compile_template

__all__ = ["WebhookDeliverer", "redact_url"]

_BODY_EXCERPT = 200
_JSON = orjson.OPT_NON_STR_KEYS


def redact_url(url: str) -> str:
    """``url`` without userinfo (``https://user:pass@host/`` → ``https://***@host/``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, "***@" + host, parts.path, parts.query, parts.fragment))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


class WebhookDeliverer:
    """Sends records to one HTTP endpoint (see the module docstring)."""

    def __init__(self, config: WebhookSinkConfig) -> None:
        self.config = config
        self._render = compile_template(config.body_template)
        self._verbatim = config.body_template is None
        self._secret = config.auth_header_value.get_secret_value() if config.auth_header_value else None
        self._session: aiohttp.ClientSession | None = None
        self._ssl: ssl.SSLContext | bool = True
        self.requests = 0
        self.last_status: int | None = None
        self.last_error: str | None = None

    # ---- helpers ------------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        secret = self._secret
        if secret:
            text = text.replace(secret, "***")
            # a "Bearer <token>" value: the token alone must not leak either
            for part in secret.split():
                if len(part) >= 8:
                    text = text.replace(part, "***")
        for url in (self.config.url, self.config.health_check_url):
            if url:
                text = text.replace(url, redact_url(url))
        return text

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "User-Agent": "wgsiem-webhook"}
        h.update(self.config.headers)
        if self._secret is not None:
            h[self.config.auth_header_name] = self._secret
        return h

    def _ssl_context(self) -> ssl.SSLContext | bool:
        """aiohttp's ``ssl``: True = default verification (ignored for http://), False = none."""
        cfg = self.config
        if not cfg.tls_verify:
            return False
        ctx = ssl.create_default_context(cafile=cfg.tls_ca_file) if cfg.tls_ca_file else True
        return ctx

    # ---- Deliverer ----------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._session is not None:
            return
        try:
            self._ssl = self._ssl_context()
        except (OSError, ssl.SSLError) as exc:
            raise WgsiemError(
                f"webhook: cannot load tls_ca_file: {exc}", fix="point tls_ca_file at a PEM CA bundle"
            ) from exc
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_secs),
            connector=aiohttp.TCPConnector(limit=self.config.max_concurrent_requests),
            headers=self._headers(),
            json_serialize=lambda o: orjson.dumps(o, option=_JSON).decode(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def health_check(self) -> None:
        cfg = self.config
        if cfg.health_check == "none":
            return
        await self.start()
        assert self._session is not None
        url = cfg.health_check_url or cfg.url
        try:
            async with self._session.request(
                cfg.health_check.upper(), url, ssl=self._ssl, allow_redirects=False
            ) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise WgsiemError(
                self._scrub(f"webhook {redact_url(url)} unreachable: {type(exc).__name__}: {exc}"),
                fix="check the url, that the endpoint is up, and tls_ca_file/tls_verify for https",
            ) from None
        if status >= 500 or status in (401, 403, 404):
            raise WgsiemError(
                f"webhook health check {cfg.health_check.upper()} {redact_url(url)} answered HTTP {status}",
                fix="check the url and auth_header_value, or set health_check: none",
            )

    async def deliver(self, batch: list[Pending]) -> DeliveryReport:
        if self.config.mode == "batch":
            if self._verbatim:  # the stored JSON of each document, not encoded again
                body = b"[" + b",".join(self._doc_json(p) for p in batch) + b"]"
            else:
                body = orjson.dumps([self._render(p.doc) for p in batch], option=_JSON)
            status, text, retry_after = await self._send(body)
            if self._retryable(status):
                raise RetryableDeliveryError(
                    self._scrub(f"webhook answered HTTP {status}: {text}"), retry_after_secs=retry_after
                )
            if status >= 400:
                reason = self._scrub(f"HTTP {status}: {text}")
                return DeliveryReport(rejected={p.seq: reason for p in batch})
            return DeliveryReport()
        return await self._deliver_each(batch)

    async def _deliver_each(self, batch: list[Pending]) -> DeliveryReport:
        sem = asyncio.Semaphore(self.config.max_concurrent_requests)
        report = DeliveryReport()
        errors: list[str] = []

        async def one(p: Pending) -> None:
            async with sem:
                body = (
                    self._doc_json(p) if self._verbatim else orjson.dumps(self._render(p.doc), option=_JSON)
                )
                try:
                    status, text, _ = await self._send(body)
                except RetryableDeliveryError as exc:
                    report.retry.append(p.seq)
                    errors.append(str(exc))
                    return
                if self._retryable(status):
                    report.retry.append(p.seq)
                    errors.append(f"HTTP {status}")
                elif status >= 400:
                    report.rejected[p.seq] = self._scrub(f"HTTP {status}: {text}")

        await asyncio.gather(*(one(p) for p in batch))
        if len(report.retry) == len(batch) and errors:
            # nothing got through: a whole-call failure (backoff, outage bookkeeping, Retry-After)
            raise RetryableDeliveryError(errors[0])
        report.retry.sort()
        return report

    @staticmethod
    def _doc_json(p: Pending) -> bytes:
        return p.raw if p.raw is not None else orjson.dumps(p.doc, option=_JSON)

    @staticmethod
    def _retryable(status: int) -> bool:
        return status == 429 or status == 408 or status >= 500

    async def _send(self, body: bytes) -> tuple[int, str, float | None]:
        if self._session is None:
            await self.start()
        assert self._session is not None
        self.requests += 1
        try:
            async with self._session.request(
                self.config.method, self.config.url, data=body, ssl=self._ssl, allow_redirects=False
            ) as resp:
                status = resp.status
                text = ""
                if status >= 400:
                    raw = await resp.content.read(_BODY_EXCERPT)
                    text = raw.decode("utf-8", "replace")
                else:
                    await resp.read()
                self.last_status = status
                return status, text, _retry_after(resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            msg = self._scrub(
                f"webhook {redact_url(self.config.url)}: {type(exc).__name__}: {exc}".rstrip(": ")
            )
            self.last_error = msg
            self.last_status = None
            raise RetryableDeliveryError(msg) from None

    def status(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "url": redact_url(cfg.url),
            "method": cfg.method,
            "mode": cfg.mode,
            "auth_header": cfg.auth_header_name if self._secret is not None else None,
            "requests": self.requests,
            "last_status": self.last_status,
            "last_error": self.last_error,
        }

"""The HTTP side: ``/metrics`` over HTTP or HTTPS, optionally behind basic auth, in worker threads.

prometheus_client's ``make_wsgi_app`` does content negotiation (text 0.0.4 or OpenMetrics), gzip and
``name[]`` filtering; this module adds what its ``start_http_server`` lacks: basic auth, binding
that reports failure as a :class:`~wgsiem.errors.WgsiemError` with a fix, a bounded per-request
socket timeout, and a TLS handshake done in the request thread (``do_handshake_on_connect=False``)
so one slow client cannot stall ``accept()`` for everyone.

Threads, not the event loop: a scrape of 100,000 peers takes a few hundred milliseconds of CPU, which
must not stall the pipeline's event loop; see ``collector.py`` for how state is read safely.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from wgsiem.errors import Location, WgsiemError

__all__ = ["MetricsServer", "basic_auth", "route"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

REQUEST_TIMEOUT_SECS = 30.0
_INDEX = b'<html><head><title>wgsiem</title></head><body><a href="/metrics">/metrics</a></body></html>\n'


class ExporterError(WgsiemError):
    """The exporter cannot listen (address in use, no permission, bad certificate …)."""


class _Handler(WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT_SECS  # a client that stops talking frees its thread

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: one line per scrape would drown the service log."""


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves getfqdn(host): a DNS lookup that can hang start-up
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()


def route(metrics: WsgiApp, on_error: Callable[[BaseException], None]) -> WsgiApp:
    """``/metrics`` → ``metrics``; ``/`` → a link to it; anything else 404. A failing scrape is
    reported to ``on_error`` and answered 500 (Prometheus then marks the target down)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            try:
                return list(metrics(environ, start_response))
            except Exception as exc:
                on_error(exc)
                start_response(
                    "500 Internal Server Error",
                    [("Content-Type", "text/plain; charset=utf-8")],
                    sys.exc_info(),  # replaces a status line already started, per PEP 3333
                )
                return [b"scrape failed\n"]
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [_INDEX]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: try /metrics\n"]

    return app


def basic_auth(app: WsgiApp, username: str, password: str) -> WsgiApp:
    """Require ``Authorization: Basic`` with these credentials (compared in constant time)."""
    expected = f"{username}:{password}".encode()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        header = environ.get("HTTP_AUTHORIZATION", "")
        given = b""
        if header[:6].lower() == "basic ":
            try:
                given = base64.b64decode(header[6:].strip(), validate=True)
            except (binascii.Error, ValueError):
                given = b""
        if not hmac.compare_digest(given, expected):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain; charset=utf-8"), ("WWW-Authenticate", 'Basic realm="wgsiem"')],
            )
            return [b"unauthorized\n"]
        return app(environ, start_response)

    return guarded


class MetricsServer:
    """Binds on construction (so a taken port fails ``build()``), serves in a daemon thread."""

    def __init__(
        self,
        app: WsgiApp,
        address: str,
        port: int,
        *,
        tls_cert_path: str | None = None,
        tls_key_path: str | None = None,
    ) -> None:
        self.address = address
        self.tls = tls_cert_path is not None
        try:
            infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise ExporterError(
                f"cannot resolve listen_address {address!r}: {exc.strerror}",
                fix="use an IP address such as 127.0.0.1, ::1, 0.0.0.0 or ::",
            ) from exc
        family = infos[0][0]
        server_cls = type("_BoundServer", (_Server,), {"address_family": family})
        try:
            self.httpd: WSGIServer = server_cls((address, port), _Handler)
        except OSError as exc:
            raise ExporterError(
                f"cannot listen on {_hostport(address, port)}: {exc.strerror}",
                fix="pick another port (the exporter's `port`) or stop what holds it",
            ) from exc
        self.httpd.set_app(app)
        if tls_cert_path is not None and tls_key_path is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            try:
                ctx.load_cert_chain(tls_cert_path, tls_key_path)
            except (OSError, ssl.SSLError) as exc:
                self.httpd.server_close()
                raise ExporterError(
                    f"cannot load the TLS certificate or key: {exc}",
                    location=Location(tls_cert_path),
                    fix="tls_cert_path and tls_key_path must be a matching PEM certificate and key",
                ) from exc
            self.httpd.socket = ctx.wrap_socket(
                self.httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port: int = int(self.httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.address
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        return f"{'https' if self.tls else 'http'}://{_hostport(host, self.port)}/metrics"

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.httpd.serve_forever, args=(0.1,), name="wgsiem-metrics", daemon=True
            )
            self._thread.start()

    @property
    def serving(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.httpd.server_close()


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

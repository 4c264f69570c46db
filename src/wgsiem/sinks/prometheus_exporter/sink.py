"""The ``prometheus_exporter`` sink runtime: a pipeline sink that serves ``/metrics``.

It is a sink (not a side server of the service) so it gets the same lifecycle and telemetry as every
other component, and so the event-derived counters (handshakes, sessions, roaming, counter resets)
see exactly the events the other sinks deliver. Everything else on ``/metrics`` is read from the
current state at scrape time (see ``collector.py``): ``write`` only bumps a few integers.

Lifecycle: ``build`` binds the port and starts serving at once, so the WireGuard state is scrapeable
before the first event arrives and a taken port fails the start-up with a fix; ``close`` stops
the server and frees the port.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import make_wsgi_app

from wgsiem.errors import WgsiemError
from wgsiem.event import Envelope
from wgsiem.pipeline.telemetry import ComponentTelemetry, TelemetryRegistry
from wgsiem.sources.peer_directory import PeerDirectory

from .collector import EventCounters, WgsiemCollector
from .config import PrometheusExporterConfig
from .encoder import CONTENT_TYPE, encode_text
from .server import ExporterError, MetricsServer, basic_auth, route

__all__ = ["PrometheusExporterSink"]

log = logging.getLogger("wgsiem.sinks.prometheus_exporter")


class PrometheusExporterSink:
    """Serves WireGuard state, event-derived counters, pipeline telemetry and process metrics."""

    component_type = "prometheus_exporter"

    def __init__(
        self,
        config: PrometheusExporterConfig,
        telemetry: ComponentTelemetry,
        registry: TelemetryRegistry,
        sources: Mapping[str, Any],
        *,
        component_id: str,
        peers: PeerDirectory | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Prefer :meth:`build`, which also binds the port. ``peers`` is taken for the sink build
        contract but not exported: friendly names come from ``peer_names`` (a label value must not
        change under a series, which a name derived from changing state could)."""
        self.config = config
        self.telemetry = telemetry
        self.component_id = component_id
        self.peers = peers
        self.events = EventCounters()
        kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
        self.collector = WgsiemCollector(
            registry,
            sources,
            self.events,
            per_peer_labels=config.per_peer_labels,
            peer_names=config.peer_names,
            **kwargs,
        )
        # registries of our own, never the process-global default one (tests build many sinks):
        # ``metrics`` holds everything (prometheus_client's own path: OpenMetrics, name[] filters);
        # ``process`` only the standard collectors appended to the fast text path
        self.metrics = CollectorRegistry(auto_describe=False)
        self.metrics.register(self.collector)
        self.process = CollectorRegistry(auto_describe=False)
        if config.process_metrics:
            for collector in (ProcessCollector(registry=None), PlatformCollector(registry=None)):
                self.metrics.register(collector)
                self.process.register(collector)
            GCCollector(registry=self.metrics)
            GCCollector(registry=self.process)
        self._client_app = make_wsgi_app(self.metrics)
        self.server: MetricsServer | None = None

    @classmethod
    def build(
        cls,
        config: PrometheusExporterConfig,
        registry: TelemetryRegistry,
        *,
        component_id: str = "prometheus",
        peers: PeerDirectory | None = None,
        sources: Mapping[str, Any] | None = None,
    ) -> PrometheusExporterSink:
        """Register telemetry, bind ``listen_address:port`` and start serving.

        ``sources`` is the service's live id → source mapping; wg_state sources added to it later are
        picked up on the next scrape. Raises :class:`~wgsiem.errors.WgsiemError` with a fix if the
        port cannot be bound or the TLS files cannot be loaded.
        """
        sink = cls(
            config,
            registry.register(component_id, "sink", cls.component_type),
            registry,
            sources if sources is not None else {},
            component_id=component_id,
            peers=peers,
        )
        sink.serve()
        return sink

    def exposition(self) -> bytes:
        """The text-format exposition (what Prometheus gets)."""
        return encode_text(self.collector.families()) + generate_latest(self.process)

    def _metrics_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Text format through the fast encoder; a client that accepts only OpenMetrics, or filters
        with ``name[]``, gets prometheus_client's own (slower) app over the same collector."""
        accept = environ.get("HTTP_ACCEPT", "")
        filtered = "name[]" in parse_qs(environ.get("QUERY_STRING", ""))
        if filtered or ("openmetrics" in accept and "text/plain" not in accept):
            return list(self._client_app(environ, start_response))
        body = self.exposition()
        headers = [("Content-Type", CONTENT_TYPE)]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            # level 1: the exposition is repetitive enough to shrink ~10x; level 9 costs seconds at 50 MB
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [body]

    def app(self) -> Any:
        """The WSGI application (``/metrics`` with auth when configured)."""
        cfg = self.config
        wsgi = route(self._metrics_app, self._scrape_failed)
        if cfg.basic_auth_username is not None and cfg.basic_auth_password is not None:
            wsgi = basic_auth(wsgi, cfg.basic_auth_username, cfg.basic_auth_password.get_secret_value())
        return wsgi

    def serve(self) -> None:
        if self.server is None:
            cfg = self.config
            self.server = MetricsServer(
                self.app(),
                cfg.listen_address,
                cfg.port,
                tls_cert_path=cfg.tls_cert_path,
                tls_key_path=cfg.tls_key_path,
            )
            self.server.start()
            log.info("%s: serving %s", self.component_id, self.server.url)

    @property
    def url(self) -> str:
        if self.server is None:
            raise ExporterError("the exporter is not serving")
        return self.server.url

    def _scrape_failed(self, exc: BaseException) -> None:
        self.telemetry.error(type(exc).__name__, "scrape", str(exc))
        log.error("%s: scrape failed: %s", self.component_id, exc)

    # ---- Sink protocol -------------------------------------------------------------------------------

    async def start(self) -> None:
        self.serve()

    async def write(self, batch: list[Envelope]) -> None:
        self.events.add(batch)

    async def flush(self) -> None:
        """Nothing to flush: the counters are read at scrape time."""

    async def close(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await asyncio.to_thread(server.stop)

    async def health_check(self) -> None:
        """The port is bound, the server thread runs and a TCP connection to it is accepted
        (a TLS handshake too when TLS is on)."""
        server = self.server
        if server is None or not server.serving:
            raise ExporterError(
                "the metrics server is not running", fix="see the service log for why it stopped"
            )
        await asyncio.to_thread(_probe, server)


def _probe(server: MetricsServer) -> None:
    host = server.address
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        with socket.create_connection((host, server.port), timeout=5.0) as sock:
            if server.tls:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE  # probing our own listener, not authenticating it
                with ctx.wrap_socket(sock) as tls:
                    tls.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
                    tls.recv(1)
            else:
                sock.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
                sock.recv(1)
    except OSError as exc:
        raise WgsiemError(
            f"the metrics endpoint {server.url} does not answer: {exc}",
            fix="check that nothing (firewall, another process) intercepts the port",
        ) from exc

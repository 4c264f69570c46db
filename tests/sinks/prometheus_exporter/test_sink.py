"""The sink's HTTP side for real (loopback sockets): routes, basic auth, TLS, bind errors, health,
event counting through ``write``, and that closing frees the port."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import socket
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import generate_latest

from wgsiem import __version__
from wgsiem.errors import WgsiemError
from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.prometheus_exporter.config import PrometheusExporterConfig
from wgsiem.sinks.prometheus_exporter.sink import PrometheusExporterSink

from .prom import http_get


@pytest.fixture
def sinks() -> Iterator[list[PrometheusExporterSink]]:
    """Every sink a test builds is closed afterwards (the port is freed even if the test fails)."""
    made: list[PrometheusExporterSink] = []
    yield made
    for s in made:
        asyncio.run(s.close())


def build(sinks: list[PrometheusExporterSink], **cfg: Any) -> PrometheusExporterSink:
    cfg.setdefault("port", 0)
    sink = PrometheusExporterSink.build(
        PrometheusExporterConfig(**cfg), TelemetryRegistry(), component_id="prom", sources={}
    )
    sinks.append(sink)
    return sink


def test_serves_metrics_an_index_and_404_elsewhere(sinks: list[PrometheusExporterSink]) -> None:
    sink = build(sinks)
    status, body = http_get(sink.url)
    assert status == 200
    assert f'wgsiem_build_info{{version="{__version__}"}} 1.0'.encode() in body
    assert b"process_cpu_seconds_total" in body  # process metrics on by default
    assert b'wgsiem_component_received_events_total{component_id="prom",component_kind="sink"' in body
    base = sink.url.removesuffix("/metrics")
    assert http_get(base + "/")[0] == 200
    assert http_get(base + "/debug")[0] == 404


def test_process_metrics_can_be_turned_off(sinks: list[PrometheusExporterSink]) -> None:
    body = http_get(build(sinks, process_metrics=False).url)[1]
    assert b"process_" not in body and b"python_" not in body


ROAM = {
    "event": {"action": "endpoint-changed", "dataset": "wireguard.state"},
    "observer": {"ingress": {"interface": {"name": "wg0"}}},
}


def test_write_counts_state_actions_by_interface(sinks: list[PrometheusExporterSink]) -> None:
    sink = build(sinks, process_metrics=False)
    asyncio.run(sink.write([Envelope(ROAM, EventMeta("wg", 0))] * 3))
    body = http_get(sink.url)[1]
    assert b'wgsiem_wireguard_endpoint_changes_total{interface="wg0"} 3.0' in body
    assert b'wgsiem_wireguard_handshakes_total{interface="wg0"} 0.0' in body


def test_basic_auth_rejects_missing_and_wrong_credentials(sinks: list[PrometheusExporterSink]) -> None:
    sink = build(sinks, basic_auth_username="prom", basic_auth_password="s3cr3t-pw")
    assert http_get(sink.url)[0] == 401
    assert http_get(sink.url, auth=("prom", "nope"))[0] == 401
    assert http_get(sink.url, auth=("other", "s3cr3t-pw"))[0] == 401
    status, body = http_get(sink.url, auth=("prom", "s3cr3t-pw"))
    assert status == 200 and b"s3cr3t-pw" not in body


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_tls_serves_https_only(sinks: list[PrometheusExporterSink], tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    sink = build(sinks, tls_cert_path=str(cert), tls_key_path=str(key))
    assert sink.url.startswith("https://127.0.0.1:")
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    status, body = http_get(sink.url, context=ctx)
    assert status == 200 and b"wgsiem_build_info" in body
    # plain HTTP to the TLS port gets no metrics
    with pytest.raises(OSError):
        http_get(sink.url.replace("https://", "http://"), timeout=5)
    asyncio.run(sink.health_check())


def test_bad_tls_files_fail_the_build_with_a_fix(sinks: list[PrometheusExporterSink], tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("not a certificate")
    with pytest.raises(WgsiemError, match="TLS certificate or key") as info:
        build(sinks, tls_cert_path=str(tmp_path / "c.pem"), tls_key_path=str(tmp_path / "c.pem"))
    assert info.value.fix


def test_a_taken_port_fails_the_build_with_a_fix(sinks: list[PrometheusExporterSink]) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(WgsiemError, match=f"cannot listen on 127.0.0.1:{port}") as info:
            build(sinks, port=port)
        assert info.value.fix is not None and "port" in info.value.fix


def test_health_check_passes_while_serving_and_close_frees_the_port(
    sinks: list[PrometheusExporterSink],
) -> None:
    sink = build(sinks)
    port = int(sink.url.rsplit(":", 1)[1].split("/")[0])
    asyncio.run(sink.health_check())
    asyncio.run(sink.close())
    with pytest.raises(WgsiemError, match="not running"):
        asyncio.run(sink.health_check())
    with socket.socket() as again:  # the port is free: a new listener may take it
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


def test_ipv6_loopback(sinks: list[PrometheusExporterSink]) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    sink = build(sinks, listen_address="::1")
    assert sink.url.startswith("http://[::1]:")
    assert http_get(sink.url)[0] == 200


def test_a_failing_scrape_answers_500_and_is_counted(sinks: list[PrometheusExporterSink]) -> None:
    sink = build(sinks, process_metrics=False)

    class Broken:
        differ = property(lambda self: (_ for _ in ()).throw(ValueError("state unreadable")))

    sink.collector.sources = {"wg": Broken()}
    assert http_get(sink.url)[0] == 500
    assert sink.telemetry.errors == {"ValueError@scrape": 1}
    sink.collector.sources = {}
    assert http_get(sink.url)[0] == 200


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, dict(r.headers.items()), r.read()


def test_prometheus_text_is_what_prometheus_client_writes_for_the_same_registry(
    sinks: list[PrometheusExporterSink],
) -> None:
    sink = build(sinks, process_metrics=False)
    asyncio.run(sink.write([Envelope(ROAM, EventMeta("wg", 0))]))
    # what Prometheus 2.x sends: OpenMetrics preferred, text accepted → the fast text path
    status, headers, body = get(
        sink.url, Accept="application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.3"
    )
    assert (status, headers["Content-Type"]) == (200, "text/plain; version=0.0.4; charset=utf-8")
    assert body == generate_latest(sink.metrics)


def test_gzip_openmetrics_and_name_filters_are_served(sinks: list[PrometheusExporterSink]) -> None:
    sink = build(sinks, process_metrics=False)
    _, headers, body = get(sink.url, **{"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == generate_latest(sink.metrics)
    _, headers, body = get(sink.url, Accept="application/openmetrics-text;version=1.0.0")
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n") and b"wgsiem_build_info" in body
    for query in ("?name[]=wgsiem_build_info", "?name%5B%5D=wgsiem_build_info"):
        _, _, body = get(sink.url + query)
        assert [line for line in body.splitlines() if not line.startswith(b"#")] == [
            f'wgsiem_build_info{{version="{__version__}"}} 1.0'.encode()
        ]

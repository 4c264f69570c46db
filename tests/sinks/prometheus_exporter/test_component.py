"""The exporter scraped by a real Prometheus while a real wg_state source polls a real lab.

What is proved here, end to end through Prometheus' own HTTP API:

* the scraped connected-peer gauge, per-interface and per-peer byte counters equal what the lab's
  gateway (wireguard-go) reports;
* a roaming client moves ``wgsiem_wireguard_endpoint_changes_total`` but adds no series, with
  per-peer labels on;
* the live exposition passes ``promtool check metrics``;
* basic auth and TLS work with Prometheus' own scraper.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.sinks.prometheus_exporter.test_sink import self_signed
from wgsiem.lab.runtime import Lab
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.prometheus_exporter.config import PrometheusExporterConfig
from wgsiem.sinks.prometheus_exporter.sink import PrometheusExporterSink
from wgsiem.sources.wg_state.config import WgStateSourceConfig
from wgsiem.sources.wg_state.source import WgStateSource

from .prom import Prometheus, available, http_get, promtool_check, wait_for

pytestmark = [
    pytest.mark.component,
    pytest.mark.skipif(
        not available(), reason="prometheus/promtool (Debian package prometheus) not installed"
    ),
]


@pytest.fixture
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Prometheus]]:
    """``prometheus(target_port, scrape=...)`` → a started server, always stopped afterwards."""
    started: list[Prometheus] = []

    def factory(target_port: int, **kw: object) -> Prometheus:
        p = Prometheus(tmp_path_factory.mktemp("prometheus"), target_port, **kw)  # type: ignore[arg-type]
        started.append(p)
        p.start()
        return p

    yield factory
    for p in started:
        p.stop()


@pytest.fixture
def sinks() -> Iterator[list[PrometheusExporterSink]]:
    made: list[PrometheusExporterSink] = []
    yield made
    for s in made:
        asyncio.run(s.close())


class Gateway:
    """A real wg_state source on the lab's gateway whose events go to the exporter sink."""

    def __init__(self, lab: Lab, state_dir: Path, sinks: list[PrometheusExporterSink]) -> None:
        self.registry = TelemetryRegistry()
        self.source = WgStateSource(
            "wg",
            WgStateSourceConfig(interfaces=[lab.gateway_interface], transfer_interval_secs=0.1),
            hostname="gw-test",
            state_dir=state_dir,
            telemetry=self.registry.register("wg", "source", "wg_state"),
        )
        self.sink = PrometheusExporterSink.build(
            PrometheusExporterConfig(port=0, per_peer_labels=True),
            self.registry,
            component_id="prom",
            sources={"wg": self.source},
        )
        sinks.append(self.sink)
        self.actions: list[str] = []

    @property
    def port(self) -> int:
        return int(self.sink.url.rsplit(":", 1)[1].split("/")[0])

    def poll(self) -> None:
        """One poll; its events delivered to the sink as the pipeline would."""
        envs = asyncio.run(self.source.poll_once())
        if envs:
            self.sink.telemetry.received += len(envs)
            asyncio.run(self.sink.write(envs))
            self.sink.telemetry.sent += len(envs)
            self.actions += [e.action for e in envs]


def test_prometheus_scrapes_what_the_lab_reports_and_roaming_adds_no_series(
    make_lab: Callable[..., Lab],
    prometheus: Callable[..., Prometheus],
    sinks: list[PrometheusExporterSink],
    tmp_path: Path,
) -> None:
    lab = make_lab(clients=2)
    gw = Gateway(lab, tmp_path, sinks)
    gw.poll()
    prom = prometheus(gw.port)
    since = time.time() - 1
    target = prom.wait_up()
    assert target["lastError"] == ""
    iface = lab.gateway_interface
    key1 = lab.client_public_key(1)
    sel = f'{{job="wgsiem",interface="{iface}"}}'
    peer_sel = f'{{job="wgsiem",interface="{iface}",public_key="{key1}"}}'

    lab.connect(1)
    lab.send(1, 100_000)

    def scraped_matches_lab() -> tuple[float | None, ...] | None:
        gw.poll()
        peers = [lab.gateway_peer(i) for i in lab.clients]
        reported = lab.gateway_peer(1)
        assert reported is not None and all(p is not None for p in peers)
        want = (
            1.0,
            float(reported.rx_bytes),
            float(reported.tx_bytes),
            float(sum(p.rx_bytes for p in peers if p)),
            float(sum(p.tx_bytes for p in peers if p)),
            float(reported.last_handshake_sec),
        )
        got = (
            prom.value(f"wgsiem_wireguard_connected_peers{sel}"),
            prom.value(f"wgsiem_wireguard_peer_received_bytes_total{peer_sel}"),
            prom.value(f"wgsiem_wireguard_peer_sent_bytes_total{peer_sel}"),
            prom.value(f"wgsiem_wireguard_received_bytes_total{sel}"),
            prom.value(f"wgsiem_wireguard_sent_bytes_total{sel}"),
            prom.value(f"wgsiem_wireguard_peer_latest_handshake_timestamp_seconds{peer_sel}"),
        )
        return got if got == want and reported.rx_bytes >= 100_000 else None

    wait_for(scraped_matches_lab, 60, "Prometheus to hold the lab's connected peers and byte counters")
    assert prom.value(f"wgsiem_wireguard_peers{sel}") == 2
    assert prom.value(f"wgsiem_wireguard_open_sessions{sel}") == 1
    assert prom.value(f"wgsiem_wireguard_sessions_started_total{sel}") == 1
    assert prom.value(f"wgsiem_wireguard_peer_session_open{peer_sel}") == 1
    # the sink's own telemetry, from the registry (nothing polled meanwhile: it must settle)
    wait_for(
        lambda: prom.value('wgsiem_component_received_events_total{component_id="prom"}') == len(gw.actions),
        10,
        "the sink's received count",
    )

    # the live exposition passes the Prometheus project's lint
    status, body = http_get(gw.sink.url)
    assert status == 200
    lint = promtool_check(body)
    assert (lint.returncode, lint.stdout, lint.stderr) == (0, "", "")

    # roaming: the endpoint counter moves, the set of series does not grow
    job = '{job="wgsiem"}'
    before = {tuple(sorted(s.items())) for s in prom.series(job, since)}
    samples_before = prom.value(f"scrape_samples_scraped{job}")
    per_peer = [s for s in before if dict(s).get("public_key") == key1]
    assert len(per_peer) == 4 and len(before) > 50  # the check below sees real series
    endpoint = lab.roam(1)
    assert endpoint.startswith("192.0.2.")

    def roam_scraped() -> bool:
        gw.poll()
        return prom.value(f"wgsiem_wireguard_endpoint_changes_total{sel}") == 1

    wait_for(roam_scraped, 60, "the roam to be scraped")
    scraped_at = prom.value(f"timestamp(up{job})") or 0.0
    wait_for(lambda: (prom.value(f"timestamp(up{job})") or 0.0) > scraped_at, 10, "one more scrape")
    after = {tuple(sorted(s.items())) for s in prom.series(job, since)}
    assert after - before == set(), sorted(after - before)
    assert prom.value(f"scrape_samples_scraped{job}") == samples_before
    assert not [s for s in after if any("192.0.2." in v or "203.0.113." in v for _, v in s)]


def test_prometheus_scrapes_through_basic_auth_and_tls(
    prometheus: Callable[..., Prometheus], sinks: list[PrometheusExporterSink], tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    (tmp_path / "pw").write_text("s3cr3t-pw")
    sink = PrometheusExporterSink.build(
        PrometheusExporterConfig(
            port=0,
            basic_auth_username="prom",
            basic_auth_password="s3cr3t-pw",
            tls_cert_path=str(cert),
            tls_key_path=str(key),
        ),
        TelemetryRegistry(),
        component_id="prom",
    )
    sinks.append(sink)
    port = int(sink.url.rsplit(":", 1)[1].split("/")[0])
    prom = prometheus(
        port,
        scrape={
            "scheme": "https",
            "tls_config": {"ca_file": str(cert), "server_name": "localhost"},
            "basic_auth": {"username": "prom", "password_file": str(tmp_path / "pw")},
        },
    )
    prom.wait_up()
    assert prom.value('wgsiem_build_info{job="wgsiem"}') == 1
    assert (prom.value('process_resident_memory_bytes{job="wgsiem"}') or 0) > 0

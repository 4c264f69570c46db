"""The collector's exposition for a small real state: exact text, monotonic totals, no series churn."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from wgsiem import __version__
from wgsiem.event import Envelope, EventMeta
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sinks.prometheus_exporter.collector import EventCounters, WgsiemCollector
from wgsiem.sources.wg_state.capture import read_capture
from wgsiem.sources.wg_state.differ import Differ
from wgsiem.sources.wg_state.normalize import to_ecs
from wgsiem.sources.wg_state.records import Fingerprinter
from wgsiem.sources.wg_state.source import PollTiming

from .prom import available, promtool_check

FIXTURES = Path(__file__).parents[2] / "fixtures" / "wg"
DUMP = (FIXTURES / "dump_3_peers.txt").read_bytes()  # real `wg show all dump`, 3 peers, 2 handshakes
T0 = 1795622700.0  # 18 s after the fixture's handshakes
K1 = "d+jmLNQndGWP3LnG+idZjah/lfKqbMP8iJ5gYIK8mRM="
K2 = "LMRy47Sg4S6IpX0TapE5XKyBED4Mbj15lG56zxQYzkM="
K3 = "piIgYnPUjoQQgE53+rN3poqqbKYf/185pcAeQjNF2F0="


class StateSource:
    """What the collector reads of a wg_state source (``differ``, ``polls``, ``last_poll_at``,
    ``last_poll``), driven by the real differ over captured snapshots as a replay would."""

    def __init__(self) -> None:
        self.differ = Differ(Fingerprinter(b"k" * 32), host="gw-test")
        self.polls = 0
        self.last_poll_at: float | None = None
        self.last_poll = PollTiming()

    def process(self, dump: bytes, at: float) -> list[Envelope]:
        snap = read_capture(dump, at, self.differ.fp, "test")
        changes = self.differ.update(snap)
        self.polls += 1
        self.last_poll_at = at
        ns = time.time_ns()
        return [Envelope(to_ecs(c, hostname="gw-test", observed_at=at), EventMeta("wg", ns)) for c in changes]


class State:
    """A wg_state differ fed captured snapshots, its events counted as the sink would."""

    def __init__(self, tmp: Path, **collector: Any) -> None:
        self.registry = TelemetryRegistry()
        self.registry.register("wg", "source", "wg_state").sent = 6
        self.source = StateSource()
        self.events = EventCounters()
        self.now = T0
        self.collector = WgsiemCollector(
            self.registry, {"wg": self.source}, self.events, clock=lambda: self.now, **collector
        )
        self.metrics = CollectorRegistry(auto_describe=False)
        self.metrics.register(self.collector)

    def feed(self, dump: bytes, at: float) -> list[Envelope]:
        envs = self.source.process(dump, at)
        self.events.add(envs)
        return envs

    def text(self) -> str:
        return generate_latest(self.metrics).decode()

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in self.collector.collect()
            for s in fam.samples
        }


def replace_peer(dump: bytes, key: str, **cols: str) -> bytes:
    """The dump with one peer's columns changed (endpoint, latest_handshake, rx, tx)."""
    idx = {"endpoint": 3, "latest_handshake": 5, "rx": 6, "tx": 7}
    out = []
    for line in dump.decode().splitlines():
        parts = line.split("\t")
        if len(parts) == 9 and parts[1] == key:
            for name, value in cols.items():
                parts[idx[name]] = value
        out.append("\t".join(parts))
    return ("\n".join(out) + "\n").encode()


def drop_peer(dump: bytes, key: str) -> bytes:
    return b"".join(line for line in dump.splitlines(keepends=True) if key.encode() not in line)


EXPECTED = """\
# HELP wgsiem_build_info wgsiem version (always 1).
# TYPE wgsiem_build_info gauge
wgsiem_build_info{version="0.1.0"} 1.0
# HELP wgsiem_wireguard_interface_up 1 while the interface exists, 0 once it is gone.
# TYPE wgsiem_wireguard_interface_up gauge
wgsiem_wireguard_interface_up{interface="wgfxg0"} 1.0
# HELP wgsiem_wireguard_peers Peers configured on the interface.
# TYPE wgsiem_wireguard_peers gauge
wgsiem_wireguard_peers{interface="wgfxg0"} 3.0
# HELP wgsiem_wireguard_connected_peers Peers whose latest handshake is younger than the session \
timeout (180 s, REJECT_AFTER_TIME) at scrape time.
# TYPE wgsiem_wireguard_connected_peers gauge
wgsiem_wireguard_connected_peers{interface="wgfxg0"} 2.0
# HELP wgsiem_wireguard_open_sessions Sessions open in wgsiem's session tracking (started, not yet ended).
# TYPE wgsiem_wireguard_open_sessions gauge
wgsiem_wireguard_open_sessions{interface="wgfxg0"} 2.0
# HELP wgsiem_wireguard_received_bytes_total Bytes received from the interface's peers (kept monotonic \
across peer removal and counter resets).
# TYPE wgsiem_wireguard_received_bytes_total counter
wgsiem_wireguard_received_bytes_total{interface="wgfxg0"} 17320.0
# HELP wgsiem_wireguard_sent_bytes_total Bytes sent to the interface's peers (kept monotonic across \
peer removal and counter resets).
# TYPE wgsiem_wireguard_sent_bytes_total counter
wgsiem_wireguard_sent_bytes_total{interface="wgfxg0"} 5736.0
# HELP wgsiem_wireguard_latest_handshake_timestamp_seconds Unix time of the newest handshake of any \
peer of the interface (0: none yet).
# TYPE wgsiem_wireguard_latest_handshake_timestamp_seconds gauge
wgsiem_wireguard_latest_handshake_timestamp_seconds{interface="wgfxg0"} 1.795622682e+09
# HELP wgsiem_wireguard_handshakes_total Handshakes observed (at most one per peer and poll: the state \
shows the latest only).
# TYPE wgsiem_wireguard_handshakes_total counter
wgsiem_wireguard_handshakes_total{interface="wgfxg0"} 0.0
# HELP wgsiem_wireguard_sessions_started_total Sessions started (session-started events).
# TYPE wgsiem_wireguard_sessions_started_total counter
wgsiem_wireguard_sessions_started_total{interface="wgfxg0"} 2.0
# HELP wgsiem_wireguard_sessions_ended_total Sessions ended (session-ended events), by end reason.
# TYPE wgsiem_wireguard_sessions_ended_total counter
wgsiem_wireguard_sessions_ended_total{interface="wgfxg0",reason="expired"} 0.0
wgsiem_wireguard_sessions_ended_total{interface="wgfxg0",reason="peer-removed"} 0.0
wgsiem_wireguard_sessions_ended_total{interface="wgfxg0",reason="interface-removed"} 0.0
wgsiem_wireguard_sessions_ended_total{interface="wgfxg0",reason="counter-reset"} 0.0
# HELP wgsiem_wireguard_endpoint_changes_total Peers seen at a new outer endpoint (roaming; \
endpoint-changed events).
# TYPE wgsiem_wireguard_endpoint_changes_total counter
wgsiem_wireguard_endpoint_changes_total{interface="wgfxg0"} 0.0
# HELP wgsiem_wireguard_transfer_resets_total Peer byte counters that went backwards (peer or \
interface recreated).
# TYPE wgsiem_wireguard_transfer_resets_total counter
wgsiem_wireguard_transfer_resets_total{interface="wgfxg0"} 0.0
# HELP wgsiem_wireguard_polls_total Reads of the WireGuard state by the source.
# TYPE wgsiem_wireguard_polls_total counter
wgsiem_wireguard_polls_total{component_id="wg"} 1.0
# HELP wgsiem_wireguard_last_poll_timestamp_seconds Unix time of the source's latest read (0: none yet).
# TYPE wgsiem_wireguard_last_poll_timestamp_seconds gauge
wgsiem_wireguard_last_poll_timestamp_seconds{component_id="wg"} 1.7956227e+09
# HELP wgsiem_wireguard_last_poll_duration_seconds How long the source's latest poll took (read + \
diff + normalize).
# TYPE wgsiem_wireguard_last_poll_duration_seconds gauge
wgsiem_wireguard_last_poll_duration_seconds{component_id="wg"} 0.25
# HELP wgsiem_component_received_events_total Events the component took in.
# TYPE wgsiem_component_received_events_total counter
wgsiem_component_received_events_total{component_id="wg",component_kind="source",\
component_type="wg_state"} 0.0
wgsiem_component_received_events_total{component_id="prom",component_kind="sink",\
component_type="prometheus_exporter"} 6.0
# HELP wgsiem_component_sent_events_total Events the component passed on or delivered.
# TYPE wgsiem_component_sent_events_total counter
wgsiem_component_sent_events_total{component_id="wg",component_kind="source",component_type="wg_state"} 6.0
wgsiem_component_sent_events_total{component_id="prom",component_kind="sink",\
component_type="prometheus_exporter"} 5.0
# HELP wgsiem_component_dropped_events_total Events the component dropped, by reason (never silently).
# TYPE wgsiem_component_dropped_events_total counter
wgsiem_component_dropped_events_total{component_id="prom",component_kind="sink",\
component_type="prometheus_exporter",reason="sink_failed"} 1.0
# HELP wgsiem_component_errors_total Errors, by error type and stage.
# TYPE wgsiem_component_errors_total counter
wgsiem_component_errors_total{component_id="prom",component_kind="sink",\
component_type="prometheus_exporter",error_type="OSError",stage="write"} 1.0
"""


def test_exposition_of_a_small_real_state_is_exact(tmp_path: Path) -> None:
    st = State(tmp_path)
    envs = st.feed(DUMP, T0)
    assert [e.action for e in envs] == [
        "interface-added",
        *["peer-added", "session-started"] * 2,
        "peer-added",
    ]
    st.source.last_poll = PollTiming(read_secs=0.125, diff_secs=0.0625, emit_secs=0.0625)
    sink = st.registry.register("prom", "sink", "prometheus_exporter")
    sink.received, sink.sent = 6, 5
    sink.error("OSError", "write", "disk full")
    sink.drop("sink_failed")
    expected = EXPECTED.replace("\\\n", "").replace('version="0.1.0"', f'version="{__version__}"')
    assert st.text() == expected


def test_per_peer_series_carry_key_and_friendly_name(tmp_path: Path) -> None:
    st = State(tmp_path, per_peer_labels=True, peer_names={K1: "alice"})
    st.feed(DUMP, T0)
    s = st.samples()
    lab = (("interface", "wgfxg0"), ("name", "alice"), ("public_key", K1))
    assert s[("wgsiem_wireguard_peer_received_bytes_total", lab)] == 4468
    assert s[("wgsiem_wireguard_peer_sent_bytes_total", lab)] == 2508
    assert s[("wgsiem_wireguard_peer_latest_handshake_timestamp_seconds", lab)] == 1795622682
    assert s[("wgsiem_wireguard_peer_session_open", lab)] == 1
    never = (("interface", "wgfxg0"), ("name", ""), ("public_key", K3))
    assert s[("wgsiem_wireguard_peer_latest_handshake_timestamp_seconds", never)] == 0
    assert s[("wgsiem_wireguard_peer_session_open", never)] == 0
    per_peer = [k for k in s if k[0].startswith("wgsiem_wireguard_peer_")]
    assert len(per_peer) == 4 * 3


def test_per_peer_series_are_off_by_default(tmp_path: Path) -> None:
    st = State(tmp_path)
    st.feed(DUMP, T0)
    assert not [k for k in st.samples() if "public_key" in dict(k[1])]


def test_roaming_moves_a_counter_but_never_adds_a_series(tmp_path: Path) -> None:
    st = State(tmp_path, per_peer_labels=True)
    st.feed(DUMP, T0)
    before = st.samples()
    roamed = replace_peer(DUMP, K1, endpoint="198.51.100.7:40000", latest_handshake="1795622710", rx="5000")
    envs = st.feed(roamed, T0 + 20)
    assert "endpoint-changed" in [e.action for e in envs]
    after = st.samples()
    assert after.keys() == before.keys()
    assert after[("wgsiem_wireguard_endpoint_changes_total", (("interface", "wgfxg0"),))] == 1
    assert after[("wgsiem_wireguard_handshakes_total", (("interface", "wgfxg0"),))] == 1
    assert not [k for k in after if any("198.51.100.7" in v for _, v in k[1])]


def test_interface_byte_totals_stay_monotonic_when_peers_go_or_reset(tmp_path: Path) -> None:
    st = State(tmp_path)
    rx_key = ("wgsiem_wireguard_received_bytes_total", (("interface", "wgfxg0"),))
    tx_key = ("wgsiem_wireguard_sent_bytes_total", (("interface", "wgfxg0"),))
    st.feed(DUMP, T0)
    assert (st.samples()[rx_key], st.samples()[tx_key]) == (17320, 5736)
    # K2 (12852 rx / 3228 tx) is removed: its bytes stay in the total
    st.feed(drop_peer(DUMP, K2), T0 + 5)
    assert (st.samples()[rx_key], st.samples()[tx_key]) == (17320, 5736)
    # K1's counters restart from 100/50 (peer recreated): total = before + new bytes
    envs = st.feed(replace_peer(drop_peer(DUMP, K2), K1, rx="100", tx="50"), T0 + 10)
    assert "counter-reset" in [e.action for e in envs]
    assert (st.samples()[rx_key], st.samples()[tx_key]) == (17320 + 100, 5736 + 50)
    assert st.samples()[("wgsiem_wireguard_transfer_resets_total", (("interface", "wgfxg0"),))] == 1
    ended = st.samples()[
        ("wgsiem_wireguard_sessions_ended_total", (("interface", "wgfxg0"), ("reason", "peer-removed")))
    ]
    assert ended == 1


def test_connected_peers_follow_the_clock_open_sessions_the_tracking(tmp_path: Path) -> None:
    st = State(tmp_path)
    st.feed(DUMP, T0)
    key = (("interface", "wgfxg0"),)
    st.now = 1795622682 + 181  # past REJECT_AFTER_TIME, before the differ's grace ends the sessions
    s = st.samples()
    assert (s[("wgsiem_wireguard_connected_peers", key)], s[("wgsiem_wireguard_open_sessions", key)]) == (
        0,
        2,
    )


def env(data: dict[str, Any]) -> Envelope:
    return Envelope(data, EventMeta("x", 0))


def test_event_counters_count_only_state_events_by_interface_and_reason() -> None:
    ev = EventCounters()

    def doc(action: str, dataset: str = "wireguard.state", iface: str = "wg0", **wg: Any) -> dict[str, Any]:
        return {
            "event": {"action": action, "dataset": dataset},
            "observer": {"ingress": {"interface": {"name": iface}}},
            "wireguard": wg,
        }

    ev.add(
        [
            env(doc("handshake")),
            env(doc("handshake", iface="wg1")),
            env(doc("handshake", dataset="wireguard.wggo_log")),  # another source: not counted twice
            env(doc("session-ended", session={"end_reason": "expired"})),
            env(doc("session-ended", session={"end_reason": "martian"})),
            env(doc("transfer")),  # not a counted action
            env({"event": {"action": "handshake", "dataset": "wireguard.state"}}),  # no interface
        ]
    )
    assert ev.snapshot() == {
        "wg0": {"handshakes": 1, "ended:expired": 1, "ended:other": 1},
        "wg1": {"handshakes": 1},
    }


def test_interface_gone_is_reported_down_with_its_series_kept(tmp_path: Path) -> None:
    st = State(tmp_path)
    st.feed(DUMP, T0)
    st.feed(b"", T0 + 5)
    s = st.samples()
    key = (("interface", "wgfxg0"),)
    assert s[("wgsiem_wireguard_interface_up", key)] == 0
    assert s[("wgsiem_wireguard_open_sessions", key)] == 0
    assert s[("wgsiem_wireguard_received_bytes_total", key)] == 17320
    ended = s[
        ("wgsiem_wireguard_sessions_ended_total", (("interface", "wgfxg0"), ("reason", "interface-removed")))
    ]
    assert ended == 2


@pytest.mark.skipif(not available(), reason="promtool (Debian package prometheus) not installed")
def test_promtool_accepts_the_full_exposition(tmp_path: Path) -> None:
    st = State(tmp_path, per_peer_labels=True, peer_names={K1: "alice"})
    st.feed(DUMP, T0)
    st.registry.register("prom", "sink", "prometheus_exporter").error("OSError", "write")
    res = promtool_check(st.text().encode())
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


def test_no_secret_of_the_fixture_reaches_the_exposition(tmp_path: Path) -> None:
    st = State(tmp_path, per_peer_labels=True)
    st.feed(DUMP, T0)
    text = st.text()
    for line in DUMP.decode().splitlines():
        cols = line.split("\t")
        secrets = [cols[1]] if len(cols) == 5 else [cols[2]] if cols[2] != "(none)" else []
        for secret in secrets:
            assert secret not in text

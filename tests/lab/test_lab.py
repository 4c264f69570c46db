"""Component tests: the lab against real wireguard-go in network namespaces (root only).

Each test asks the gateway (``wg show all dump`` or the raw UAPI socket) what happened, never the
lab's own bookkeeping alone.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from wgsiem.lab.cli import lab as lab_cli
from wgsiem.lab.netns import find_wireguard_go, list_namespaces
from wgsiem.lab.runtime import Lab
from wgsiem.lab.topology import LabError, LabSpec, interface_pattern, namespace_pattern
from wgsiem.lab.uapi import SOCKET_DIR, socket_path

pytestmark = pytest.mark.component

MakeLab = Callable[..., Lab]


def dump_rows(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines()]


def peer_rows(text: str) -> dict[str, list[str]]:
    """Peer lines of a ``wg show all dump`` (9 fields) keyed by public key."""
    return {row[1]: row for row in dump_rows(text) if len(row) == 9}


def client_port(lab: Lab, i: int) -> int:
    """The UDP port client i's wireguard-go picked (from the client's own dump)."""
    (iface_row,) = [
        r for r in dump_rows(lab.wg(lab.client_namespace(i), "show", "all", "dump")) if len(r) == 5
    ]
    return int(iface_row[3])


def raw_uapi_get(interface: str) -> bytes:
    """Read a ``get=1`` answer straight off the socket until the ``errno=`` line and blank line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(60)
        sock.connect(str(SOCKET_DIR / f"{interface}.sock"))
        sock.sendall(b"get=1\n\n")
        data = b""
        while b"\nerrno=" not in data or not data.endswith(b"\n\n"):
            chunk = sock.recv(1 << 20)
            assert chunk, "socket closed before the errno= line"
            data += chunk
    return data


def test_clients_connect_and_gateway_dump_lists_each_endpoint(make_lab: MakeLab) -> None:
    lab = make_lab(clients=3)
    for i in (1, 2, 3):
        lab.connect(i)
    dump = lab.gateway_dump()
    rows = dump_rows(dump)
    assert {r[0] for r in rows} == {lab.gateway_interface}  # the view is the gateway's alone
    assert rows[0][2] == lab.gateway_public_key and rows[0][3] == "51820"
    peers = peer_rows(dump)
    assert len(peers) == 3
    for i in (1, 2, 3):
        row = peers[lab.client_public_key(i)]
        assert row[3] == f"203.0.113.{10 + i}:{client_port(lab, i)}"
        assert int(row[5]) > 0 and int(row[6]) > 0
        assert row[8] == "off"
    assert peers[lab.client_public_key(1)][4] == "10.222.0.11/32,10.222.100.0/24"
    assert peers[lab.client_public_key(2)][2] != "(none)"
    assert peers[lab.client_public_key(3)][2] == "(none)"


def test_never_connected_peer_has_no_endpoint_and_no_handshake(make_lab: MakeLab) -> None:
    lab = make_lab(clients=2)
    lab.connect(1)
    row = peer_rows(lab.gateway_dump())[lab.client_public_key(2)]
    assert row[3:8] == ["(none)", "10.222.0.12/32", "0", "0", "0"]


def test_send_and_burst_reach_the_gateway(make_lab: MakeLab) -> None:
    lab = make_lab(clients=1)
    assert lab.send(1, 50_000) >= 50_000
    before = lab.gateway_peer(1)
    assert before is not None
    grown = lab.burst(1, 500_000)
    after = lab.gateway_peer(1)
    assert after is not None and after.rx_bytes - before.rx_bytes == grown > 0


def test_roam_changes_the_endpoint_the_gateway_sees(make_lab: MakeLab) -> None:
    lab = make_lab(clients=2)
    lab.connect(1)
    port = client_port(lab, 1)
    assert lab.roam(1) == f"192.0.2.11:{port}"
    assert peer_rows(lab.gateway_dump())[lab.client_public_key(1)][3] == f"192.0.2.11:{port}"
    assert lab.roam(1, "198.51.100.61") == f"198.51.100.61:{port}"
    assert lab.roam(1, "198.51.100.61") == f"198.51.100.61:{port}"  # staying put is fine
    with pytest.raises(LabError, match="client 2's address"):
        lab.roam(1, "203.0.113.12")
    assert lab.status()["clients"][0]["outer"] == ["198.51.100.61/24"]
    # within the same subnet: the new address is a secondary until the old primary goes
    assert lab.roam(1, "198.51.100.62") == f"198.51.100.62:{port}"
    assert lab.status()["clients"][0]["outer"] == ["198.51.100.62/24"]


def test_ipv6_endpoints_and_ipv6_roaming(make_lab: MakeLab) -> None:
    lab = make_lab(clients=2, ipv6=True)
    lab.connect(1)
    lab.connect(2)
    peers = peer_rows(lab.gateway_dump())
    assert peers[lab.client_public_key(1)][3] == f"203.0.113.11:{client_port(lab, 1)}"
    assert peers[lab.client_public_key(2)][3] == f"[2001:db8:1::12]:{client_port(lab, 2)}"
    assert lab.roam(2) == f"[2001:db8:2::12]:{client_port(lab, 2)}"


def test_remove_peer_and_add_it_back(make_lab: MakeLab) -> None:
    lab = make_lab(clients=2)
    lab.connect(2)
    lab.remove_peer(2)
    assert set(peer_rows(lab.gateway_dump())) == {lab.client_public_key(1)}
    with pytest.raises(LabError, match="removed"):
        lab.connect(2)
    lab.add_peer(2)
    lab.connect(2)
    assert int(peer_rows(lab.gateway_dump())[lab.client_public_key(2)][5]) > 0


def test_restart_gateway_recreates_the_interface_and_resets_counters(make_lab: MakeLab) -> None:
    lab = make_lab(clients=2)
    lab.send(1, 20_000)
    pid_before = lab.status()["gateways"][0]["pid"]
    lab.restart_gateway()
    status = lab.status()
    assert status["gateways"][0]["pid"] != pid_before and status["gateways"][0]["running"]
    for row in peer_rows(lab.gateway_dump()).values():
        assert row[3:] == ["(none)", row[4], "0", "0", "0", "off"]
    peer = lab.connect(1)
    assert 0 < peer.rx_bytes < 20_000
    assert lab.log_path(lab.gateway_interface).read_text().count("Starting wireguard-go") == 2


def test_idle_client_sends_nothing_not_even_a_passive_keepalive(make_lab: MakeLab) -> None:
    lab = make_lab(clients=1)
    lab.connect(1)  # the gateway answers with ICMP, so WireGuard would send a keepalive 10 s later
    lab.idle(1)
    before = lab.gateway_peer(1)
    deadline = time.monotonic() + 12  # past WireGuard's 10 s passive-keepalive timer
    while time.monotonic() < deadline:
        now = lab.gateway_peer(1)
        assert now is not None and now.rx_bytes == before.rx_bytes  # type: ignore[union-attr]
        time.sleep(0.5)
    assert lab.status()["clients"][0]["idle"]
    lab.send(1, 1000)  # and it comes back when used


def test_add_client_adds_a_live_peer(make_lab: MakeLab) -> None:
    lab = make_lab(clients=1)
    i = lab.add_client()
    assert i == 2 and lab.clients == [1, 2]
    peer = lab.connect(2)
    assert peer.endpoint is not None and peer.endpoint.startswith("203.0.113.12:")
    assert set(peer_rows(lab.gateway_dump())) == {lab.client_public_key(1), lab.client_public_key(2)}
    assert peer_rows(lab.gateway_dump())[lab.client_public_key(2)][2] != "(none)"  # client 2 has a PSK


def test_two_interfaces_in_the_gateway_namespace(make_lab: MakeLab) -> None:
    lab = make_lab(clients=1)
    second = lab.add_gateway_interface()
    lab.add_bulk_peers(2, interface=second)
    rows = dump_rows(lab.gateway_dump())
    # `wg show all` lists interfaces in socket-directory order, which is not sorted
    assert sorted(r[0] for r in rows if len(r) == 5) == [lab.gateway_interface, second]
    assert sum(1 for r in rows if r[0] == second and len(r) == 9) == 2


def test_bulk_peers_are_all_listed_by_dump_and_raw_uapi(make_lab: MakeLab) -> None:
    lab = make_lab(clients=1)
    keys = lab.add_bulk_peers(5000)
    assert len(set(keys)) == 5000
    peers = peer_rows(lab.gateway_dump())
    assert len(peers) == 5001
    assert set(keys) <= set(peers)
    raw = raw_uapi_get(lab.gateway_interface)
    assert raw.endswith(b"\nerrno=0\n\n")
    assert raw.count(b"\npublic_key=") == 5001
    more = lab.add_bulk_peers(100)  # a second call continues the allowed-IP sequence
    allowed = {peers[k][4] for k in keys} | {
        r[4] for k, r in peer_rows(lab.gateway_dump()).items() if k in more
    }
    assert len(allowed) == 5100


def test_status_logs_and_state_never_contain_secrets(make_lab: MakeLab) -> None:
    lab = make_lab(clients=2)
    lab.connect(1)
    lab.connect(2)
    secrets = lab.secrets()
    assert len(secrets) == 4  # gateway + 2 clients + client 2's PSK
    outputs = [json.dumps(lab.status()), (lab.state_dir / "lab.json").read_text()]
    outputs += [p.read_text(errors="replace") for p in lab.state_dir.glob("*.log")]
    for text in outputs:
        for secret in secrets:
            assert secret not in text
    for path in (lab.state_dir / "keys").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600


def assert_no_trace(name: str) -> None:
    assert not [ns for ns in list_namespaces() if namespace_pattern(name).fullmatch(ns)]
    assert not find_wireguard_go(lambda i: interface_pattern(name).fullmatch(i) is not None)
    assert not [s for s in SOCKET_DIR.glob("*.sock") if interface_pattern(name).fullmatch(s.stem)]


def test_down_leaves_nothing_behind_and_is_idempotent(make_lab: MakeLab) -> None:
    lab = make_lab(clients=2)
    lab.connect(1)
    pids = [lab.status()["gateways"][0]["pid"], *(c["pid"] for c in lab.status()["clients"])]
    lab.down()
    assert_no_trace(lab.spec.name)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()  # reaped, not even a zombie
    lab.down()
    assert lab.status()["up"] is False


def test_down_cleans_a_partial_lab(tmp_path: Path, lab_name: str) -> None:
    name = lab_name
    lab = Lab(LabSpec(name=name, clients=1), tmp_path)
    try:
        # what a crash half-way through up() leaves: a namespace, a stale socket, no state file
        subprocess.run(["ip", "netns", "add", f"wgsiem-{name}-c1"], check=True)
        socket_path(f"wg{name}c1").touch()
        lab.down()
        assert_no_trace(name)
    finally:
        lab.down()


def test_up_replaces_a_stale_lab_of_the_same_name(make_lab: MakeLab, tmp_path: Path) -> None:
    first = make_lab(clients=1)
    second = Lab(LabSpec(name=first.spec.name, clients=2), tmp_path / "other")
    try:
        second.up()
        assert second.clients == [1, 2]
        second.connect(2)
        assert first.spec.name == second.spec.name
    finally:
        second.down()
    assert_no_trace(first.spec.name)


def test_cli_drives_a_lab_from_its_state_dir(make_lab: MakeLab) -> None:
    lab = make_lab(clients=2)
    where = ["--name", lab.spec.name, "--state-dir", str(lab.state_dir)]
    runner = CliRunner()
    result = runner.invoke(lab_cli, ["connect", *where, "1"])
    assert result.exit_code == 0, result.output
    assert "203.0.113.11:" in result.output
    result = runner.invoke(lab_cli, ["roam", *where, "1", "10.9.9.9"])
    assert result.exit_code == 1 and "error: roam address 10.9.9.9" in result.output
    result = runner.invoke(lab_cli, ["status", *where, "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["clients"][0]["gateway_view"]["endpoint"].startswith("203.0.113.11:")
    result = runner.invoke(lab_cli, ["down", *where])
    assert result.exit_code == 0
    assert_no_trace(lab.spec.name)


def test_cli_up_uses_wgsiem_lab_dir(tmp_path: Path, lab_name: str) -> None:
    name = lab_name
    runner = CliRunner(env={"WGSIEM_LAB_DIR": str(tmp_path)})
    try:
        result = runner.invoke(lab_cli, ["up", "--name", name, "--clients", "1"])
        assert result.exit_code == 0, result.output
        assert (tmp_path / name / "lab.json").exists()
    finally:
        Lab(LabSpec(name=name), tmp_path / name).down()
    assert_no_trace(name)

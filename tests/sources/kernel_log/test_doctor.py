"""``wgsiem doctor``: against fake /sys, /proc and dynamic debug control files in tmp (this machine has
no WireGuard kernel module and no debugfs), and against the real machine's answer."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from wgsiem.cli.doctor import ENABLE_LINE, DoctorPaths, diagnose, doctor, wireguard_call_sites

# the shape of /sys/kernel/debug/dynamic_debug/control lines: file:line [module]function =flags "fmt"
CONTROL_OFF = (
    "# filename:lineno [module]function flags format\n"
    'drivers/net/wireguard/peer.c:62 [wireguard]wg_peer_create =_ "%s: Peer %llu created\\012"\n'
    "drivers/net/wireguard/receive.c:158 [wireguard]wg_receive_handshake_packet =_ "
    '"%s: Receiving handshake initiation from peer %llu (%pISpfsc)\\012"\n'
    'net/ipv4/tcp.c:100 [tcp]tcp_foo =p "x\\012"\n'
)


def fake_host(tmp: Path, *, loaded: bool, debugfs: bool, control: str | None) -> list[str]:
    (tmp / "sys_module").mkdir()
    if loaded:
        (tmp / "sys_module" / "wireguard").mkdir()
    (tmp / "modules").write_text("ext4 1 0 - Live 0x0\n")
    mounts = "proc /proc proc rw 0 0\n"
    if debugfs:
        mounts += "debugfs /sys/kernel/debug debugfs rw,nosuid 0 0\n"
    (tmp / "mounts").write_text(mounts)
    if control is not None:
        (tmp / "control").write_text(control)
    return [
        "--sys-module",
        str(tmp / "sys_module"),
        "--proc-modules",
        str(tmp / "modules"),
        "--proc-mounts",
        str(tmp / "mounts"),
        "--control",
        str(tmp / "control"),
    ]


def test_call_sites() -> None:
    assert wireguard_call_sites(CONTROL_OFF) == (2, 0)
    assert wireguard_call_sites(CONTROL_OFF.replace("=_", "=p")) == (2, 2)
    assert wireguard_call_sites(CONTROL_OFF.replace('=_ "%s: Peer', '=pflmt "%s: Peer')) == (2, 1)


def test_fake_host_debug_off_then_enable(tmp_path: Path) -> None:
    args = fake_host(tmp_path, loaded=True, debugfs=True, control=CONTROL_OFF)
    r = CliRunner().invoke(doctor, args)
    assert r.exit_code == 1
    assert "ok  wireguard module: loaded" in r.output
    assert "ok  debugfs: mounted on /sys/kernel/debug" in r.output
    assert "FAIL wireguard debug messages: 0 of 2 call sites enabled" in r.output
    assert "wgsiem doctor --enable-debug" in r.output
    # --enable-debug writes the one line the kernel understands (a fake file just keeps it)
    r = CliRunner().invoke(doctor, [*args, "--enable-debug"])
    assert (tmp_path / "control").read_text().endswith(ENABLE_LINE + "\n")
    assert f"wrote '{ENABLE_LINE}'" in r.output


def test_fake_host_all_good(tmp_path: Path) -> None:
    args = fake_host(tmp_path, loaded=True, debugfs=True, control=CONTROL_OFF.replace("=_", "=p"))
    r = CliRunner().invoke(doctor, [*args, "--json"])
    assert r.exit_code == 0
    out = json.loads(r.output)
    assert out["ok"] is True
    assert [c["name"] for c in out["checks"]] == ["wireguard module", "debugfs", "wireguard debug messages"]


def test_fake_host_module_listed_in_proc_modules_only(tmp_path: Path) -> None:
    fake_host(tmp_path, loaded=False, debugfs=False, control=None)
    (tmp_path / "modules").write_text("wireguard 118784 0 - Live 0x0\n")
    checks = diagnose(
        DoctorPaths(tmp_path / "sys_module", tmp_path / "modules", tmp_path / "mounts", tmp_path / "control")
    )
    assert [(c.name, c.ok) for c in checks] == [
        ("wireguard module", True),
        ("debugfs", False),
        ("dynamic debug", False),
    ]


def test_enable_fails_cleanly_without_control_file(tmp_path: Path) -> None:
    args = fake_host(tmp_path, loaded=False, debugfs=False, control=None)
    r = CliRunner().invoke(doctor, [*args, "--enable-debug"])
    assert r.exit_code == 1
    assert "could not write" in r.output


def test_this_machine_has_no_wireguard_module() -> None:
    """The real answer here: a container without the kernel module (wireguard-go only)."""
    r = CliRunner().invoke(doctor, ["--json"])
    assert r.exit_code == 1
    checks = {c["name"]: c for c in json.loads(r.output)["checks"]}
    assert checks["wireguard module"]["ok"] is False
    assert checks["wireguard module"]["detail"].startswith("not loaded")

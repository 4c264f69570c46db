"""``wgsiem doctor``: can this host give wgsiem the WireGuard kernel messages it needs?

The kernel only logs WireGuard's handshakes, invalid packets and peer numbers at debug level, through
dynamic debug (``wg(8)`` DEBUGGING INFORMATION: ``echo module wireguard +p >
/sys/kernel/debug/dynamic_debug/control``). Without it the ``kernel_log`` source sees only the module
banner. The checks:

1. the ``wireguard`` module is loaded (``/sys/module/wireguard`` or a ``/proc/modules`` line);
2. debugfs is mounted (``/proc/mounts``) and the dynamic debug control file exists;
3. the control file's ``[wireguard]`` call sites are enabled (flag ``p``).

``--enable-debug`` writes ``module wireguard +p`` to the control file (root; lasts until reboot or
module reload — the persistent way is ``options wireguard dyndbg=+p`` in ``/etc/modprobe.d/``).
Every path is an option so tests can point the command at fake files.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import click

__all__ = ["Check", "DoctorPaths", "diagnose", "doctor", "enable_debug", "wireguard_call_sites"]

ENABLE_LINE = "module wireguard +p"
PERSIST_HINT = "echo 'options wireguard dyndbg=+p' > /etc/modprobe.d/wireguard-debug.conf"


@dataclass(frozen=True, slots=True)
class DoctorPaths:
    sys_module: Path = Path("/sys/module")
    proc_modules: Path = Path("/proc/modules")
    proc_mounts: Path = Path("/proc/mounts")
    control: Path = Path("/sys/kernel/debug/dynamic_debug/control")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


def module_loaded(paths: DoctorPaths) -> bool:
    if (paths.sys_module / "wireguard").is_dir():
        return True
    try:
        text = paths.proc_modules.read_text()
    except OSError:
        return False
    return any(line.split(" ", 1)[0] == "wireguard" for line in text.splitlines())


def debugfs_mount(paths: DoctorPaths) -> str | None:
    try:
        text = paths.proc_mounts.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "debugfs":
            return parts[1]
    return None


def wireguard_call_sites(control_text: str) -> tuple[int, int]:
    """(call sites of the wireguard module, how many of them print): from dynamic debug's control file,
    whose lines read ``drivers/net/wireguard/peer.c:62 [wireguard]wg_peer_create =p "…"``."""
    total = enabled = 0
    for line in control_text.splitlines():
        if "[wireguard]" not in line:
            continue
        total += 1
        flags = line.split(" =", 1)[1].split(" ", 1)[0] if " =" in line else ""
        if "p" in flags:
            enabled += 1
    return total, enabled


def diagnose(paths: DoctorPaths) -> list[Check]:
    checks: list[Check] = []
    loaded = module_loaded(paths)
    checks.append(
        Check(
            "wireguard module",
            loaded,
            "loaded"
            if loaded
            else "not loaded: no kernel WireGuard here (wireguard-go, or no interface yet)",
            None if loaded else "modprobe wireguard (or bring an interface up: wg-quick up wg0)",
        )
    )
    mount = debugfs_mount(paths)
    checks.append(
        Check(
            "debugfs",
            mount is not None,
            f"mounted on {mount}" if mount else "not mounted",
            None if mount else "mount -t debugfs none /sys/kernel/debug",
        )
    )
    try:
        control = paths.control.read_text()
    except OSError as exc:
        checks.append(
            Check(
                "dynamic debug",
                False,
                f"cannot read {paths.control}: {exc.strerror or exc}",
                "a kernel built with CONFIG_DYNAMIC_DEBUG, debugfs mounted, and root",
            )
        )
        return checks
    total, enabled = wireguard_call_sites(control)
    if total == 0:
        checks.append(
            Check(
                "wireguard debug messages",
                False,
                "no wireguard call sites in the control file (module not loaded?)",
                "modprobe wireguard, then run this again",
            )
        )
    else:
        on = enabled == total
        checks.append(
            Check(
                "wireguard debug messages",
                on,
                f"{enabled} of {total} call sites enabled",
                None
                if on
                else f"wgsiem doctor --enable-debug  (= echo '{ENABLE_LINE}' > {paths.control}); "
                f"to keep it across reboots: {PERSIST_HINT}",
            )
        )
    return checks


def enable_debug(paths: DoctorPaths) -> None:
    """Turn WireGuard's debug messages on (one write of ``module wireguard +p``)."""
    fd = os.open(paths.control, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, (ENABLE_LINE + "\n").encode())
    finally:
        os.close(fd)


@click.command()
@click.option("--enable-debug", "enable", is_flag=True, help="turn WireGuard's dynamic debug messages on")
@click.option("--json", "as_json", is_flag=True, help="print the checks as JSON")
@click.option("--sys-module", type=click.Path(file_okay=False), default="/sys/module", show_default=True)
@click.option("--proc-modules", type=click.Path(dir_okay=False), default="/proc/modules", show_default=True)
@click.option("--proc-mounts", type=click.Path(dir_okay=False), default="/proc/mounts", show_default=True)
@click.option(
    "--control",
    type=click.Path(dir_okay=False),
    default="/sys/kernel/debug/dynamic_debug/control",
    show_default=True,
    help="dynamic debug control file",
)
def doctor(
    enable: bool, as_json: bool, sys_module: str, proc_modules: str, proc_mounts: str, control: str
) -> None:
    """Check that the kernel logs what the kernel_log source needs (module, debugfs, dynamic debug)."""
    paths = DoctorPaths(Path(sys_module), Path(proc_modules), Path(proc_mounts), Path(control))
    enabled_now: str | None = None
    if enable:
        try:
            enable_debug(paths)
            enabled_now = f"wrote '{ENABLE_LINE}' to {paths.control}"
        except OSError as exc:
            enabled_now = f"could not write {paths.control}: {exc.strerror or exc}"
    checks = diagnose(paths)
    ok = all(c.ok for c in checks)
    if as_json:
        out = {"ok": ok, "checks": [asdict(c) for c in checks]}
        if enabled_now:
            out["enable_debug"] = enabled_now
        click.echo(json.dumps(out, indent=2))
    else:
        if enabled_now:
            click.echo(enabled_now)
        for c in checks:
            click.echo(f"{'ok ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
            if c.fix:
                click.echo(f"     fix: {c.fix}")
        if ok:
            click.echo("WireGuard kernel debug messages are on: the kernel_log source will see handshakes.")
        else:
            click.echo(
                "Without these the kernel logs no handshakes or invalid packets (only the module banner). "
                "Debug messages are rate-limited by net_ratelimit (net.core.message_cost / message_burst); "
                "'net_ratelimit: N callbacks suppressed' lines are reported as lost visibility."
            )
    raise SystemExit(0 if ok else 1)

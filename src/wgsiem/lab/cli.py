"""``wgsiem lab``: build, drive and tear down the WireGuard lab from a shell.

Each command is one process; the lab outlives ``up`` and is found again through its state directory
(default ``/var/lib/wgsiem/lab/<name>``, or ``$WGSIEM_LAB_DIR/<name>``). The main CLI mounts
:data:`lab` as a sub-group; it also runs on its own (``python -m wgsiem.lab.cli``).
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from wgsiem.errors import WgsiemError
from wgsiem.lab.runtime import Lab
from wgsiem.lab.topology import LabSpec

__all__ = ["default_state_dir", "lab"]

F = TypeVar("F", bound=Callable[..., Any])
_console = Console()


def default_state_dir(name: str) -> Path:
    base = os.environ.get("WGSIEM_LAB_DIR") or "/var/lib/wgsiem/lab"
    return Path(base) / name


def _reports_errors(fn: F) -> F:
    """Print ``error: <what> — <fix>`` and exit 1 instead of a traceback for errors we raise on purpose."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except WgsiemError as exc:
            click.echo(f"error: {exc.render()}", err=True)
            raise SystemExit(1) from None

    return wrapper  # type: ignore[return-value]


def _where(fn: F) -> F:
    fn = click.option(
        "--state-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Lab state directory [default: $WGSIEM_LAB_DIR/<name> or /var/lib/wgsiem/lab/<name>].",
    )(fn)
    return click.option("--name", default="demo", show_default=True, help="Lab name (1-6 of [a-z0-9]).")(fn)


def _open(name: str, state_dir: Path | None) -> Lab:
    return Lab.load(state_dir or default_state_dir(name))


@click.group("lab")
def lab() -> None:
    """A real WireGuard lab: wireguard-go gateway and clients in network namespaces (needs root)."""


@lab.command()
@_where
@click.option("--clients", default=3, show_default=True, help="Number of clients.")
@click.option("--ipv6", is_flag=True, help="Add IPv6 outer addresses; even clients dial over IPv6.")
@_reports_errors
def up(name: str, state_dir: Path | None, clients: int, ipv6: bool) -> None:
    """Build the lab (removing a stale lab of the same name first)."""
    spec = LabSpec(name=name, clients=clients, ipv6=ipv6)
    started = time.monotonic()
    the_lab = Lab(spec, state_dir or default_state_dir(name))
    try:
        the_lab.up()
    except BaseException:
        the_lab.down()
        raise
    _console.print(f"lab [bold]{name}[/] is up in {time.monotonic() - started:.2f}s ({the_lab.state_dir})")
    _print_status(the_lab.status())


@lab.command()
@_where
@_reports_errors
def down(name: str, state_dir: Path | None) -> None:
    """Remove the lab: processes, namespaces, sockets, keys (safe to repeat)."""
    Lab(LabSpec(name=name), state_dir or default_state_dir(name)).down()
    _console.print(f"lab [bold]{name}[/] is down")


@lab.command()
@_where
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@_reports_errors
def status(name: str, state_dir: Path | None, as_json: bool) -> None:
    """Show namespaces, processes and what the gateway sees of each client."""
    info = Lab(LabSpec(name=name), state_dir or default_state_dir(name)).status()
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        _print_status(info)


@lab.command()
@_where
@_reports_errors
def dump(name: str, state_dir: Path | None) -> None:
    """Print ``wg show all dump`` as seen inside the gateway namespace (includes the private key)."""
    click.echo(_open(name, state_dir).gateway_dump(), nl=False)


@lab.command()
@_where
@click.argument("i", type=int)
@_reports_errors
def connect(name: str, state_dir: Path | None, i: int) -> None:
    """Make client I handshake with the gateway."""
    peer = _open(name, state_dir).connect(i)
    _console.print(f"client {i} connected: gateway sees endpoint {peer.endpoint}")


@lab.command()
@_where
@click.argument("i", type=int)
@click.argument("nbytes", metavar="BYTES", type=int)
@click.option("--burst", is_flag=True, help="Send unpaced (some datagrams may be dropped).")
@_reports_errors
def send(name: str, state_dir: Path | None, i: int, nbytes: int, burst: bool) -> None:
    """Send BYTES of UDP from client I to the gateway through the tunnel."""
    the_lab = _open(name, state_dir)
    grown = the_lab.burst(i, nbytes) if burst else the_lab.send(i, nbytes)
    _console.print(f"client {i}: gateway received {grown} bytes (WireGuard overhead included)")


@lab.command()
@_where
@click.argument("i", type=int)
@click.argument("new_ip", required=False)
@_reports_errors
def roam(name: str, state_dir: Path | None, i: int, new_ip: str | None) -> None:
    """Move client I to NEW_IP (default 192.0.2.(10+I)) and wait until the gateway sees it."""
    endpoint = _open(name, state_dir).roam(i, new_ip)
    _console.print(f"client {i} roamed: gateway sees endpoint {endpoint}")


@lab.command()
@_where
@click.argument("i", type=int)
@_reports_errors
def idle(name: str, state_dir: Path | None, i: int) -> None:
    """Make client I send nothing (no data, no keepalives) until it is used again."""
    _open(name, state_dir).idle(i)
    _console.print(f"client {i} is idle")


@lab.command("remove-peer")
@_where
@click.argument("i", type=int)
@_reports_errors
def remove_peer(name: str, state_dir: Path | None, i: int) -> None:
    """Remove client I's peer from the gateway."""
    _open(name, state_dir).remove_peer(i)
    _console.print(f"client {i}'s peer removed from the gateway")


@lab.command("add-client")
@_where
@_reports_errors
def add_client(name: str, state_dir: Path | None) -> None:
    """Add a client namespace and its peer to the running gateway."""
    i = _open(name, state_dir).add_client()
    _console.print(f"client {i} added")


@lab.command("restart-gateway")
@_where
@_reports_errors
def restart_gateway(name: str, state_dir: Path | None) -> None:
    """Restart the gateway's wireguard-go (interface recreated, counters reset)."""
    _open(name, state_dir).restart_gateway()
    _console.print("gateway restarted")


@lab.command()
@_where
@click.option(
    "--rounds", type=int, default=None, help="Stop after this many rounds [default: run until stopped]."
)
@click.option(
    "--quiet-secs", type=float, default=200.0, show_default=True, help="How long a quiet client stays quiet."
)
@_reports_errors
def demo(name: str, state_dir: Path | None, rounds: int | None, quiet_secs: float) -> None:
    """Play a scripted scenario: connects, traffic, roaming, idle-outs (for the quick start)."""
    from wgsiem.lab.demo import play

    play(_open(name, state_dir), rounds=rounds, quiet_secs=quiet_secs, log=lambda m: _console.print(m))


def _print_status(info: dict[str, Any]) -> None:
    if not info.get("up"):
        left = ", ".join(info.get("namespaces", [])) or "none"
        _console.print(f"lab [bold]{info['name']}[/] is not up (namespaces left: {left})")
        return
    for gw in info["gateways"]:
        state = "[green]running[/]" if gw["running"] else "[red]stopped[/]"
        _console.print(
            f"gateway {gw['interface']} in {gw['namespace']}: {state}, pid {gw['pid']}, "
            f"port {gw['listen_port']}, public key {gw['public_key']}"
        )
    _console.print(f"gateway peers: {info['gateway_peers']} (bulk: {info['bulk_peers']})")
    table = Table("client", "interface", "outer", "dials", "gateway sees", "handshake", "rx", "tx", "notes")
    now = time.time()
    for c in info["clients"]:
        view = c["gateway_view"] or {}
        hs = view.get("latest_handshake") or 0
        notes = [n for n in ("removed", "idle") if c[n]]
        if c["preshared_key"]:
            notes.append("psk")
        if not c["running"]:
            notes.append("stopped")
        table.add_row(
            str(c["index"]),
            c["interface"],
            " ".join(c["outer"]),
            c["dials"],
            view.get("endpoint") or "-",
            f"{int(now - hs)}s ago" if hs else "never",
            str(view.get("rx_bytes", "-")),
            str(view.get("tx_bytes", "-")),
            ", ".join(notes),
        )
    _console.print(table)


if __name__ == "__main__":
    lab()

"""Helpers for the response actions' tests: an ActionContext on a lab gateway, its config file, and
waits on handshakes seen from the client side (a revoked peer is unknown to the gateway)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from wgsiem.lab.runtime import Lab
from wgsiem.lab.traffic import send_udp
from wgsiem.respond.actions.base import ActionContext
from wgsiem.respond.executors import LocalExecutor

T = TypeVar("T")

COMMENTED_HEAD = b"# managed by hand; wgsiem must keep this comment\n"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def gateway_config(lab: Lab) -> bytes:
    """The gateway's config file as an admin would keep it: `wg showconf` plus labels before peers."""
    text = lab.wg(lab.gateway_namespace, "showconf", lab.gateway_interface)
    # label each peer by its client's number (`wg showconf` lists peers in no promised order)
    number = {lab.client_public_key(i): i for i in range(1, lab.spec.clients + 1)}
    sections = re.split(r"(?m)^(?=\[Peer\]\s*$)", text)
    out = COMMENTED_HEAD + sections[0].encode()
    for section in sections[1:]:
        m = re.search(r"(?m)^PublicKey\s*=\s*(\S+)", section)
        n = number[m.group(1)] if m else 0
        out += f"# Client: peer{n} (id-{n})\n".encode() + section.encode()
    return out


def context(lab: Lab, tmp: Path, **settings: Any) -> ActionContext:
    conf = tmp / "etc" / f"{lab.gateway_interface}.conf"
    if not conf.exists():
        conf.parent.mkdir(exist_ok=True)
        conf.write_bytes(gateway_config(lab))
        conf.chmod(0o640)
    base: dict[str, Any] = {"config_files": {lab.gateway_interface: str(conf)}}
    base.update(settings)
    return ActionContext(
        executor=LocalExecutor(lab.gateway_namespace),
        dry_run=False,
        state_dir=tmp / "state",
        case_dir=tmp / "case",
        hostname="gw-test",
        settings=base,
    )


def wait_for(cond: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def client_handshake(lab: Lab, i: int) -> int:
    """Client i's latest handshake with the gateway, as the client sees it (0 = none)."""
    out = lab.wg(lab.client_namespace(i), "show", lab.client_interface(i), "latest-handshakes").split()
    return int(out[1]) if len(out) >= 2 else 0


def fresh_client_session(lab: Lab, i: int) -> None:
    """Withdraw and re-add client i's gateway peer entry: its next packet starts a new handshake."""
    lab.idle(i)
    lab._set_client_peer(i)  # the lab's own (private) re-set; no public verb re-adds without driving


def handshake_fails(lab: Lab, i: int, window: float = 7.0) -> bool:
    """Starts a fresh handshake from client i and returns True if none completed within ``window``
    (WireGuard resends a lost initiation after 5 s, so 7 s covers two attempts)."""
    fresh_client_session(lab, i)
    gw_ip = str(lab.spec.gateway().tunnel_address.ip)
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        send_udp(lab.client_namespace(i), gw_ip, 0)
        if client_handshake(lab, i) != 0:
            return False
        time.sleep(0.5)
    return True

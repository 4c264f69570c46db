"""Helpers for the respond tests on the real lab (wireguard-go + nftables in namespaces)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from wgsiem.lab.runtime import Lab

T = TypeVar("T")

GATEWAY_OUTER = "203.0.113.1"

_FLOOD = r"""
import base64, hashlib, os, socket, sys, time
pub = base64.b64decode(sys.argv[1]); n = int(sys.argv[2]); port = int(sys.argv[3])
key = hashlib.blake2s(b"mac1----" + pub).digest()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(n):
    # a handshake initiation with a valid MAC1 for the gateway's key and garbage inside: wireguard-go
    # verifies MAC1, fails to decrypt, and logs "Received invalid initiation message from <ip:port>"
    body = bytes([1, 0, 0, 0]) + os.urandom(112)
    s.sendto(body + hashlib.blake2s(body, digest_size=16, key=key).digest() + bytes(16), (sys.argv[4], port))
    time.sleep(0.05)
"""


def outer_ip(i: int) -> str:
    return f"203.0.113.{10 + i}"


def flood_invalid_initiations(lab: Lab, i: int, n: int = 15, port: int = 51820) -> None:
    """Send ``n`` invalid handshake initiations from client ``i``'s namespace (its outer address)."""
    subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            lab.client_namespace(i),
            sys.executable,
            "-c",
            _FLOOD,
            lab.gateway_public_key,
            str(n),
            str(port),
            GATEWAY_OUTER,
        ],
        check=True,
        timeout=60,
    )


def blocked_elements(lab: Lab, table: str = "wgsiem") -> list[str]:
    """Addresses in the block sets of the gateway namespace's nft table (``[]`` without the table)."""
    res = subprocess.run(
        ["ip", "netns", "exec", lab.gateway_namespace, "nft", "-j", "list", "table", "inet", table],
        capture_output=True,
        timeout=10,
    )
    if res.returncode != 0:
        return []
    out: list[str] = []
    for obj in json.loads(res.stdout)["nftables"]:
        s = obj.get("set")
        if s and s.get("name") in ("blocked4", "blocked6"):
            for el in s.get("elem") or []:
                val: Any = el.get("elem", {}).get("val") if isinstance(el, dict) else el
                out.append(str(val))
    return out


def drop_table(lab: Lab, table: str = "wgsiem") -> None:
    subprocess.run(
        ["ip", "netns", "exec", lab.gateway_namespace, "nft", "delete", "table", "inet", table],
        capture_output=True,
        timeout=10,
    )


def gateway_peers(lab: Lab) -> set[str]:
    """Public keys of the gateway's live peers (``wg show all dump`` peer lines have 9 fields)."""
    rows = [ln.split("\t") for ln in lab.gateway_dump().splitlines()]
    return {r[1] for r in rows if len(r) == 9}


def wait_for(cond: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)

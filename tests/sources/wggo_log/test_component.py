"""The wggo_log source against real wireguard-go: the lab gateway's live debug log with peers known
from the real wg_state source, a wireguard-go the source starts itself in a namespace of this test,
and replay of the captured live log giving the live events."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.sources.wggo_log.harness import make_source, replay_docs
from tests.sources.wggo_log.test_source_file import Run
from tests.support.ecs import validate
from wgsiem.lab.netns import delete_namespace, run
from wgsiem.lab.runtime import Lab
from wgsiem.lab.uapi import socket_path
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.peer_directory import PeerDirectory
from wgsiem.sources.wg_state.config import WgStateSourceConfig
from wgsiem.sources.wg_state.source import WgStateSource

pytestmark = pytest.mark.component

Doc = dict[str, Any]


def actions(docs: list[Doc], action: str, key: str | None = None) -> list[Doc]:
    return [
        d
        for d in docs
        if d["event"]["action"] == action
        and (key is None or d["wireguard"].get("peer", {}).get("public_key") == key)
    ]


def no_secrets(docs: list[Doc], secrets: list[str], *files: Path) -> None:
    blob = orjson.dumps(docs).decode() + "".join(f.read_text() for f in files if f.exists())
    for s in secrets:
        assert s not in blob


def test_live_gateway_log_resolves_full_client_keys(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(clients=2)
    gw = lab.gateway_interface
    directory = PeerDirectory()
    wg_state = WgStateSource(
        "wg",
        WgStateSourceConfig(interfaces=[gw], poll_interval_secs=0.5),
        hostname="gw-test",
        state_dir=tmp_path / "wgstate",
        telemetry=TelemetryRegistry().register("wg", "source", "wg_state"),
        peers=directory,
    )
    asyncio.run(wg_state.poll_once())  # the real gateway's peers, read over UAPI
    key1, key2 = lab.client_public_key(1), lab.client_public_key(2)
    assert {p.public_key for p in directory.peers(gw)} == {key1, key2}
    log = lab.log_path(gw)
    src = make_source(
        tmp_path, directory, path=str(log), from_start=True, poll_interval_secs=0.05, timezone=None
    )

    async def go() -> list[Doc]:
        async with Run(src) as r:
            await r.until(lambda d: bool(actions(d, "uapi-peer-created", key2)))
            await asyncio.to_thread(lab.connect, 1)
            await r.until(lambda d: bool(actions(d, "handshake-response-sent", key1)), timeout=30)
            await asyncio.to_thread(lab.send, 2, 1000)
            await r.until(lambda d: bool(actions(d, "handshake-response-sent", key2)), timeout=30)
        return r.docs

    docs = asyncio.run(go())
    (init1,) = actions(docs, "handshake-initiation-received", key1)
    assert init1["wireguard"]["peer"]["resolution"] == "resolved"
    assert init1["wireguard"]["peer"]["abbreviation"] == f"{key1[:4]}…{key1[39:43]}"
    assert init1["observer"]["ingress"]["interface"]["name"] == gw
    assert (
        abs(
            time.time()
            - time.mktime(time.strptime(init1["@timestamp"][:19], "%Y-%m-%dT%H:%M:%S"))
            + time.timezone
        )
        < 120
    )
    assert actions(docs, "handshake-initiation-received", key2)
    assert actions(docs, "daemon-started") and actions(docs, "uapi-listener-started")
    assert [p for d in docs for p in validate(d)] == []
    assert src.resolver.counts["unknown"] == 0 and src.resolver.counts["ambiguous"] == 0
    no_secrets(docs, lab.secrets(), tmp_path / "wggo_log" / "wggo.json")

    # replay of the captured live log (same peers) gives the same events, in the same order
    replay = replay_docs(make_source(tmp_path / "replay", directory, replay=True, timezone=None), log)
    strip = lambda d: (d["event"]["id"], d["event"]["action"], d["@timestamp"], d["wireguard"])  # noqa: E731
    assert [strip(d) for d in docs] == [strip(d) for d in replay[: len(docs)]]


@pytest.fixture
def namespace() -> Iterator[str]:
    """A network namespace of this test only (unique name), deleted afterwards with what runs in it."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, TUN)")
    name = f"wgsiem-wggo-{os.getpid()}"
    run(["ip", "netns", "add", name])
    try:
        yield name
    finally:
        out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout
        for pid in out.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
        delete_namespace(name)


def test_command_mode_starts_reads_and_stops_wireguard_go(namespace: str, tmp_path: Path) -> None:
    iface = f"wgq{os.getpid() % 100000}"
    private = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout.strip()
    peer_priv = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout.strip()
    peer_pub = subprocess.run(
        ["wg", "pubkey"], input=peer_priv, capture_output=True, text=True, check=True
    ).stdout.strip()
    keyfile = tmp_path / "key"
    keyfile.write_text(private + "\n")
    keyfile.chmod(0o600)
    src = make_source(
        tmp_path,
        mode="command",
        command=["ip", "netns", "exec", namespace, "wireguard-go", "-f", iface],
        env={"LOG_LEVEL": "debug"},
        stop_timeout_secs=5,
    )
    assert src.interface == iface and src.interface_from == "command"

    async def go() -> tuple[list[Doc], int | None]:
        async with Run(src) as r:
            await r.until(lambda d: bool(actions(d, "uapi-listener-started")), timeout=15)
            pid = src.daemon_pid
            await asyncio.to_thread(
                run,
                ["wg", "set", iface, "listen-port", "0", "private-key", str(keyfile)],
            )
            await asyncio.to_thread(
                run, ["wg", "set", iface, "peer", peer_pub, "allowed-ips", "10.77.0.2/32"]
            )
            await r.until(lambda d: bool(actions(d, "uapi-peer-created")), timeout=15)
        return r.docs, pid

    try:
        docs, pid = asyncio.run(go())
    finally:
        socket_path(iface).unlink(missing_ok=True)
    seen = [d["event"]["action"] for d in docs]
    assert seen[0] == "daemon-started"
    for a in ("device-started", "uapi-listener-started", "device-up", "uapi-private-key-updated"):
        assert a in seen
    (created,) = actions(docs, "uapi-peer-created")
    assert created["wireguard"]["peer"] == {
        "abbreviation": f"{peer_pub[:4]}…{peer_pub[39:43]}",
        "resolution": "unknown",
    }
    # stopped cleanly: SIGTERM, wireguard-go's own shutdown lines were read, the process is gone
    assert seen[-1] == "daemon-stopping" or "daemon-stopping" in seen
    assert "device-closed" in seen
    assert pid is not None and not Path(f"/proc/{pid}").exists()
    assert src.telemetry.dropped["banner"] >= 1  # the stderr banner, not counted as an error
    assert not src.telemetry.errors
    assert {d["observer"]["ingress"]["interface"]["name"] for d in docs} == {iface}
    assert [p for d in docs for p in validate(d)] == []
    no_secrets(docs, [private, peer_priv])


def test_command_mode_reports_exit_and_restarts(namespace: str, tmp_path: Path) -> None:
    """A daemon that dies (here: its interface name is invalid) is reported and started again."""
    src = make_source(
        tmp_path,
        mode="command",
        command=["ip", "netns", "exec", namespace, "wireguard-go", "-f", "bad/name"],
        interface="wgbad",
        restart_delay_secs=0.1,
    )

    async def go() -> list[Doc]:
        async with Run(src) as r:
            await r.until(lambda d: len(actions(d, "daemon-exited")) >= 2, timeout=20)
        return r.docs

    docs = asyncio.run(go())
    exited = actions(docs, "daemon-exited")
    assert exited[0]["process"]["exit_code"] != 0
    assert exited[0]["observer"]["ingress"]["interface"]["name"] == "wgbad"
    assert exited[0]["event"]["id"] != exited[1]["event"]["id"]
    assert src.daemon_starts >= 2
    assert [p for d in docs for p in validate(d)] == []

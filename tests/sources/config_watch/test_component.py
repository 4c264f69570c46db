"""config_watch live: real files edited on disk and observed through inotify (watchfiles), and drift
against a real WireGuard lab (wireguard-go in network namespaces) changed with `wg set`."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.sources.config_watch.support import assert_no_secrets, docs_blob, dump_logs, fixture, make_source
from tests.support.ecs import validate
from wgsiem.event import Envelope
from wgsiem.lab.runtime import Lab
from wgsiem.pipeline.telemetry import TelemetryRegistry
from wgsiem.sources.config_watch.source import ConfigWatchSource
from wgsiem.sources.peer_directory import PeerDirectory
from wgsiem.sources.wg_state.config import WgStateSourceConfig
from wgsiem.sources.wg_state.source import WgStateSource

pytestmark = pytest.mark.component

Doc = dict[str, Any]
K1 = "t8WT41AoRyvY1cyWKZSRQyKB+eFmIkjz716DOxgKP24="  # alice in wireguard-ui_wg0.conf
K2 = "t7Az2FKhCzd5vdcY6FaIMR88IQKM6GYvF6dH/iW87Ec="  # bob


class Live:
    """Runs sources' real ``run()`` loops; collects what they emit; waits on conditions."""

    def __init__(self, *sources: Any) -> None:
        self.sources = sources
        self.docs: list[Doc] = []
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def emit(self, envs: list[Envelope]) -> None:
        self.docs += [e.data for e in envs]

    async def __aenter__(self) -> Live:
        self.tasks = [asyncio.create_task(s.run(self.emit, self.stop)) for s in self.sources]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), 15)

    def of(self, action: str, dataset: str = "wireguard.config") -> list[Doc]:
        return [d for d in self.docs if d["event"]["action"] == action and d["event"]["dataset"] == dataset]

    async def until(self, pred: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            for t in self.tasks:
                if t.done():
                    t.result()  # surface a crashed loop
            if time.monotonic() > deadline:
                seen = [d["event"]["action"] for d in self.docs]
                pytest.fail(f"timed out waiting for {what}; saw {seen}")
            await asyncio.sleep(0.05)

    async def settle(self, source: ConfigWatchSource) -> None:
        """Until the watcher loop has gone round twice more: inotify is set up and nothing is pending."""
        n = source.watch_ticks
        await self.until(lambda: source.watch_ticks > n + 1, "the watcher to go round")


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro())


def write_atomically(path: Path, text: str) -> None:
    """What sed -i, Ansible and many editors do: write a temp file beside it, then rename over."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def vim_save(path: Path, text: str) -> None:
    """vim's default with backupcopy=no: move the original to a backup, write anew, drop the backup."""
    backup = path.with_name(path.name + "~")
    os.rename(path, backup)
    path.write_text(text)
    os.chmod(path, 0o600)
    backup.unlink()


def test_files_edited_on_disk(tmp_path: Path) -> None:
    etc = tmp_path / "wireguard"
    etc.mkdir()
    src = make_source(
        tmp_path / "state", paths=[str(etc / "*.conf")], debounce_ms=100, drift_check_interval_secs=0.2
    )
    conf = etc / "wg0.conf"
    base = fixture("wireguard-ui_wg0.conf")

    async def scenario() -> None:
        async with Live(src) as live:
            await live.settle(src)
            # created
            conf.write_text(base)
            os.chmod(conf, 0o600)
            await live.until(lambda: len(live.of("peer-added")) == 2, "file created with 2 peers")
            (created,) = live.of("config-file-created")
            assert created["wireguard"]["config"]["initial_sync"] is False
            assert created["file"]["mode"] == "0600"

            # edited in place: keepalive of both peers
            conf.write_text(base.replace("PersistentKeepalive = 15", "PersistentKeepalive = 20"))
            await live.until(lambda: len(live.of("persistent-keepalive-changed")) == 2, "keepalive edits")

            # atomic rename: alice's AllowedIPs widened
            v3 = base.replace("AllowedIPs = 10.252.1.1/32", "AllowedIPs = 10.252.1.1/32, 0.0.0.0/0")
            write_atomically(conf, v3)
            await live.until(lambda: len(live.of("allowed-ips-changed")) == 1, "atomic rename edit")
            (ch,) = live.of("allowed-ips-changed")
            assert ch["wireguard"]["peer"]["name"] == "alice"
            assert ch["wireguard"]["change"]["allowed_ips"]["added"] == ["0.0.0.0/0"]

            # vim-style save: the file is moved away and written anew: one change, no delete/create
            vim_save(
                conf, v3.replace("Endpoint", "Endpoint").replace("ListenPort = 51820", "ListenPort = 51821")
            )
            await live.until(lambda: len(live.of("interface-changed")) == 1, "vim-style save")
            assert live.of("config-file-deleted") == []
            assert len(live.of("config-file-created")) == 1

            # something else in the directory: ignored
            (etc / "notes.txt").write_text("[Interface]\n")
            os.chmod(conf, 0o644)
            await live.until(lambda: len(live.of("config-file-exposed")) == 1, "chmod 644 → exposed")
            assert len(live.of("config-file-metadata-changed")) == 1

            conf.unlink()
            await live.until(lambda: len(live.of("config-file-deleted")) == 1, "deletion")
            hashes = [d["wireguard"]["config"]["file"]["sha256"] for d in live.of("config-file-changed")]
            assert all(h["before"] != h["after"] for h in hashes)
            assert len(hashes) == 3  # in place, atomic rename, vim save
        problems = [f"{d['event']['action']}: {p}" for d in live.docs for p in validate(d)]
        assert problems == []
        assert src.ctx.telemetry.sent == len(live.docs)

    run(scenario)


def test_watch_directory_created_later(tmp_path: Path) -> None:
    etc = tmp_path / "later"
    src = make_source(tmp_path / "state", paths=[str(etc)], debounce_ms=50, drift_check_interval_secs=0.1)

    async def scenario() -> None:
        async with Live(src) as live:
            await live.settle(src)
            etc.mkdir()
            await live.settle(src)  # the loop notices the directory and starts watching it
            (etc / "wg5.conf").write_text(fixture("nyr_wg0.conf"))
            await live.until(lambda: len(live.of("peer-added")) == 2, "file in a new directory")
            assert live.of("config-file-created")[0]["observer"]["ingress"]["interface"]["name"] == "wg5"

    run(scenario)


# ------------------------------------------------------------------ drift against a real lab
def lab_config(lab: Lab, etc: Path) -> Path:
    """The gateway's config file written from its running state (`wg showconf`): kept in tmp, 0600."""
    etc.mkdir(exist_ok=True)
    path = etc / f"{lab.gateway_interface}.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(lab.wg(lab.gateway_namespace, "showconf", lab.gateway_interface))
    return path


def wg_state(lab: Lab, state: Path, directory: PeerDirectory) -> WgStateSource:
    reg = TelemetryRegistry()
    return WgStateSource(
        "wg",
        WgStateSourceConfig(interfaces=[lab.gateway_interface], poll_interval_secs=0.2),
        hostname="gw-test",
        state_dir=state,
        telemetry=reg.register("wg", "source", "wg_state"),
        peers=directory,
    )


def drift(live: Live, kind: str, state: str = "detected") -> list[Doc]:
    return [d for d in live.of(f"config-drift-{state}") if d["wireguard"]["drift"]["kind"] == kind]


def test_drift_against_a_real_lab(
    make_lab: Callable[..., Lab], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    lab = make_lab(clients=2)
    etc = tmp_path / "etc"
    lab_config(lab, etc)
    gw, ns = lab.gateway_interface, lab.gateway_namespace
    key1, key2 = lab.client_public_key(1), lab.client_public_key(2)
    directory = PeerDirectory()
    state = tmp_path / "state"
    cw = make_source(
        state,
        peers=directory,
        paths=[str(etc)],
        drift_check_interval_secs=0.2,
        drift_grace_secs=0,
        debounce_ms=50,
    )
    ws = wg_state(lab, state, directory)

    async def scenario() -> list[Doc]:
        async with Live(cw, ws) as live:
            await live.until(lambda: len(directory.peers(gw)) == 2, "wg_state to publish the gateway's peers")
            await live.settle(cw)
            assert live.of("config-drift-detected") == []  # the file describes what runs

            # someone widens client 1's AllowedIPs live, without touching the file
            await asyncio.to_thread(
                lab.wg,
                ns,
                "set",
                gw,
                "peer",
                key1,
                "allowed-ips",
                "10.222.0.11/32,10.222.100.0/24,10.77.0.0/16",
            )
            await live.until(lambda: bool(drift(live, "allowed-ips-mismatch")), "allowed-ips drift")
            (d,) = drift(live, "allowed-ips-mismatch")
            assert d["wireguard"]["peer"]["public_key"] == key1
            assert d["wireguard"]["drift"]["file"] == ["10.222.0.11/32", "10.222.100.0/24"]
            assert d["wireguard"]["drift"]["running"] == ["10.222.0.11/32", "10.222.100.0/24", "10.77.0.0/16"]
            assert d["wireguard"]["drift"]["running_view"] == "peer_directory"
            assert d["file"]["path"] == str(etc / f"{gw}.conf")

            # a peer removed live; and a peer added live that no file knows
            await asyncio.to_thread(lab.remove_peer, 2)
            await live.until(lambda: bool(drift(live, "peer-only-in-file")), "peer-only-in-file drift")
            assert drift(live, "peer-only-in-file")[0]["wireguard"]["peer"]["public_key"] == key2
            await live.settle(cw)
            await live.settle(cw)
            assert len(drift(live, "allowed-ips-mismatch")) == 1  # deduplicated across checks

            # the admin puts things back: every episode ends once
            await asyncio.to_thread(lab.add_peer, 2)
            await asyncio.to_thread(
                lab.wg, ns, "set", gw, "peer", key1, "allowed-ips", "10.222.0.11/32,10.222.100.0/24"
            )
            await live.until(
                lambda: len(live.of("config-drift-resolved")) == 2, "both drift episodes to be resolved"
            )
            await live.settle(cw)
            assert len(live.of("config-drift-detected")) == 2
            return [d for d in live.docs if d["event"]["dataset"] == "wireguard.config"]

    docs = asyncio.run(scenario())
    check_secrets_and_ecs(lab, cw, state, caplog, docs)


def check_secrets_and_ecs(
    lab: Lab,
    cw: ConfigWatchSource,
    state: Path,
    caplog: pytest.LogCaptureFixture,
    docs: list[Doc] | None = None,
) -> None:
    secrets = set(lab.secrets())
    assert secrets
    assert_no_secrets(dump_logs(caplog.records), secrets)
    for f in (state / "config_watch").glob("*"):
        assert_no_secrets(f.read_text(), secrets)
    if docs is not None:
        assert_no_secrets(docs_blob(docs), secrets)
        assert [p for d in docs for p in validate(d)] == []


def test_live_read_drift_keys_psk_and_port(
    make_lab: Callable[..., Lab], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    lab = make_lab(clients=2)
    etc = tmp_path / "etc"
    path = lab_config(lab, etc)
    gw, ns = lab.gateway_interface, lab.gateway_namespace
    key2 = lab.client_public_key(2)
    state = tmp_path / "state"
    cw = make_source(
        state,
        paths=[str(etc)],
        live_read="uapi",
        drift_check_interval_secs=0.2,
        drift_grace_secs=0,
        debounce_ms=50,
    )

    async def scenario() -> list[Doc]:
        async with Live(cw) as live:
            await live.settle(cw)
            await live.settle(cw)
            assert live.of("config-drift-detected") == []
            first = live.of("config-file-created")[0]
            assert first["wireguard"]["interface"]["public_key"] == lab.gateway_public_key  # derived, X25519
            # the PSK of client 2 is dropped live (wg: a PSK from /dev/null removes it)
            await asyncio.to_thread(lab.wg, ns, "set", gw, "peer", key2, "preshared-key", "/dev/null")
            await live.until(lambda: bool(drift(live, "preshared-key-mismatch")), "psk drift")
            (d,) = drift(live, "preshared-key-mismatch")
            assert (d["wireguard"]["drift"]["file"], d["wireguard"]["drift"]["running"]) == (
                ["present"],
                ["absent"],
            )
            # the file is changed to a new listen port that is not applied
            text = path.read_text().replace("ListenPort = 51820", "ListenPort = 51999")
            write_atomically(path, text)
            await live.until(lambda: bool(drift(live, "listen-port-mismatch")), "listen port drift")
            assert len(live.of("interface-changed")) == 1
            # a new private key in the file, not applied: the events name both public keys only
            new_priv = (await asyncio.to_thread(lab.wg, ns, "genkey")).strip()
            write_atomically(
                path,
                "\n".join(
                    f"PrivateKey = {new_priv}" if line.startswith("PrivateKey") else line
                    for line in text.splitlines()
                )
                + "\n",
            )
            del new_priv
            await live.until(lambda: bool(drift(live, "interface-key-mismatch")), "interface key drift")
            (kc,) = live.of("interface-key-changed")
            assert kc["wireguard"]["change"]["public_key"]["old"] == lab.gateway_public_key
            assert kc["wireguard"]["change"]["public_key"]["new"] != lab.gateway_public_key
            return live.docs

    docs = asyncio.run(scenario())
    check_secrets_and_ecs(lab, cw, state, caplog, docs)
    # the key written only to the file is a secret too: it must not show anywhere either
    file_secrets = {
        line.split("=", 1)[1].strip()
        for line in path.read_text().splitlines()
        if "Key =" in line and "Public" not in line
    }
    assert_no_secrets(docs_blob(docs) + dump_logs(caplog.records), file_secrets)

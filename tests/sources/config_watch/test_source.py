"""The source's processing without inotify: scans of a tmp dir, persistence across restarts, replay,
drift against the peer directory, ECS validity and the no-secrets guarantee."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from tests.sources.config_watch.support import (
    FIX,
    all_fixture_secrets,
    assert_no_secrets,
    docs_blob,
    dump_logs,
    fixture,
    make_source,
)
from tests.support.ecs import validate
from wgsiem.sources.config_watch.normalize import ACTIONS
from wgsiem.sources.config_watch.source import ConfigSnapshot, ConfigWatchSource
from wgsiem.sources.peer_directory import PeerDirectory, PeerInfo

Doc = dict[str, Any]
K1 = "t8WT41AoRyvY1cyWKZSRQyKB+eFmIkjz716DOxgKP24="  # alice in wireguard-ui_wg0.conf
K2 = "t7Az2FKhCzd5vdcY6FaIMR88IQKM6GYvF6dH/iW87Ec="  # bob
K9 = "rMja8VFaD7SXIEciQoQDDR8jnO14K60SJhOwh2V7l24="


def scan(src: ConfigWatchSource) -> list[Doc]:
    return [e.data for e in asyncio.run(src.scan())]


def actions(docs: list[Doc]) -> list[str]:
    return [d["event"]["action"] for d in docs]


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    d = tmp_path / "etc"
    d.mkdir()
    return d


def put(etc: Path, name: str, text: str, mode: int = 0o600) -> Path:
    p = etc / name
    p.write_text(text)
    os.chmod(p, mode)
    return p


def test_first_run_baseline_then_changes_while_stopped(etc: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    put(etc, "wg0.conf", fixture("wireguard-ui_wg0.conf"))
    put(etc, "wg1.conf", fixture("nyr_wg0.conf"))
    src = make_source(state, paths=[str(etc)])
    docs = scan(src)
    assert actions(docs) == ["config-file-created", "config-file-created"]
    assert all(d["wireguard"]["config"]["initial_sync"] for d in docs)
    assert scan(src) == []  # nothing moved
    src.save_state()
    st = (state / "config_watch" / "cw.json").stat()
    assert stat.S_IMODE(st.st_mode) == 0o600

    # wgsiem is stopped; bob's peer is removed, wg1 is deleted, a new wg2 appears
    text = fixture("wireguard-ui_wg0.conf")
    put(etc, "wg0.conf", text[: text.index("# ID:           cmfe7c2d0a1b2c3d4e5f6a7c")])
    (etc / "wg1.conf").unlink()
    put(etc, "wg2.conf", fixture("angristan_wg0.conf"))
    again = make_source(state, paths=[str(etc)])
    docs = scan(again)
    assert actions(docs) == [
        "config-file-changed",
        "peer-removed",
        "config-file-created",
        "peer-added",
        "peer-added",
        "config-file-deleted",
    ]
    removed = docs[1]
    assert removed["wireguard"]["peer"]["public_key"] == K2
    assert removed["wireguard"]["peer"]["name"] == "bob"
    assert removed["related"]["user"] == ["bob"]
    assert removed["file"]["path"] == str(etc / "wg0.conf")
    assert removed["wireguard"]["config"]["file"]["sha256"]["before"] != removed["file"]["hash"]["sha256"]
    assert docs[2]["wireguard"]["config"]["initial_sync"] is False
    assert [d for d in docs if validate(d)] == []


def test_exposed_file_and_metadata(etc: Path, tmp_path: Path) -> None:
    p = put(etc, "wg0.conf", fixture("wg-easy_wg0.conf"), mode=0o644)
    src = make_source(tmp_path / "s", paths=[str(etc / "*.conf")])
    docs = scan(src)
    assert actions(docs) == ["config-file-created", "config-file-exposed"]
    exposed = docs[1]
    assert exposed["file"]["mode"] == "0644"
    assert exposed["file"]["owner"] == "root" and exposed["file"]["uid"] == "0"
    assert exposed["wireguard"]["config"]["file"]["world_readable"] is True
    assert exposed["wireguard"]["config"]["file"]["holds_secrets"] is True
    os.chmod(p, 0o600)
    docs = scan(src)
    assert actions(docs) == ["config-file-metadata-changed"]
    assert docs[0]["wireguard"]["change"]["mode"] == {"old": "0644", "new": "0600"}


def test_replay_contract(tmp_path: Path) -> None:
    snaps = tmp_path / "rec"
    snaps.mkdir()
    base = fixture("wireguard-ui_wg0.conf")
    (snaps / "1800000000.wg0.conf").write_text(base)
    (snaps / "1800000060.5.wg0.conf").write_text(
        base.replace("PersistentKeepalive = 15", "PersistentKeepalive = 25")
    )
    (snaps / "notes.txt").write_text("[Interface]\n")
    files = sorted(snaps.iterdir())
    detected = [f.name for f in files if ConfigWatchSource.replay_detect(f, f.read_bytes()[:4096])]
    assert detected == ["1800000000.wg0.conf", "1800000060.5.wg0.conf"]

    def replay() -> list[Doc]:
        src = make_source(tmp_path / "replay-state", replay=True)
        items = [i for f in detected for i in ConfigWatchSource.replay_read(snaps / f)]
        assert [i.time for i in items] == [1800000000.0, 1800000060.5]
        return [e.data for i in sorted(items, key=lambda i: i.time) for e in src.process(i.payload, i.time)]

    docs = replay()
    assert actions(docs) == [
        "config-file-created",
        "config-file-changed",
        "persistent-keepalive-changed",
        "persistent-keepalive-changed",
    ]
    assert docs[2]["@timestamp"] == "2027-01-15T08:01:00.500Z"
    assert docs[2]["wireguard"]["change"]["persistent_keepalive_secs"] == {"old": 15, "new": 25}
    assert [d["event"]["id"] for d in docs] == [d["event"]["id"] for d in replay()]  # deterministic
    assert not (tmp_path / "replay-state" / "config_watch").exists()  # replay keeps no state


def test_replay_tick_checks_drift_in_event_time_with_the_grace(tmp_path: Path) -> None:
    """Under replay the live drift timer runs in event time: a running-only peer that outlasts the grace
    is reported by a later tick without any new config version; one removed within the grace is not."""
    snaps = tmp_path / "rec"
    snaps.mkdir()
    (snaps / "1800000000.wg0.conf").write_text(fixture("wireguard-ui_wg0.conf"))
    (item,) = ConfigWatchSource.replay_read(snaps / "1800000000.wg0.conf")
    file_peers = [(K1, ("10.252.1.1/32",), None), (K2, ("10.252.1.2/32", "192.168.50.0/24"), None)]
    running = directory_with("wg0", file_peers)
    src = make_source(
        tmp_path / "s", peers=running, replay=True, drift_check_interval_secs=30, drift_grace_secs=10
    )
    t0 = item.time
    assert "config-drift-detected" not in actions([e.data for e in src.process(item.payload, t0)])
    assert src.replay_tick(t0 + 1) == []  # no drift and the interval has not passed yet

    def drifted(at: float) -> list[str]:
        return [
            f"{d['event']['action']} {d['wireguard']['peer']['public_key']}"
            for d in (e.data for e in src.replay_tick(at))
        ]

    # a short-lived extra peer (added, then gone before the grace ends): never reported
    running.publish(
        "wg0",
        [
            PeerInfo("wg0", k, ep, ips, None, 0.0)
            for k, ips, ep in [*file_peers, (K9, ("10.252.1.9/32",), None)]
        ],
        at=t0 + 40,
    )
    assert drifted(t0 + 40) == []  # first seen now: within the grace
    running.publish("wg0", [PeerInfo("wg0", k, ep, ips, None, 0.0) for k, ips, ep in file_peers], at=t0 + 45)
    assert drifted(t0 + 75) == []
    # a rogue peer that stays: the timer reports it once it has lasted the grace, once
    running.publish(
        "wg0",
        [
            PeerInfo("wg0", k, ep, ips, None, 0.0)
            for k, ips, ep in [*file_peers, (K9, ("10.252.1.9/32",), None)]
        ],
        at=t0 + 100,
    )
    assert drifted(t0 + 110) == []  # first seen at this check
    assert drifted(t0 + 125) == []  # interval not yet passed since the last check
    assert drifted(t0 + 145) == [f"config-drift-detected {K9}"]
    assert drifted(t0 + 300) == []


def test_replay_read_bad_name(tmp_path: Path) -> None:
    f = tmp_path / "wg0.conf"
    f.write_text("[Interface]\n")
    (item,) = ConfigWatchSource.replay_read(f)
    assert "not a config snapshot name" in item.payload.render()


def directory_with(interface: str, peers: list[tuple[str, tuple[str, ...], str | None]]) -> PeerDirectory:
    d = PeerDirectory()
    d.publish(interface, [PeerInfo(interface, k, ep, ips, None, 0.0) for k, ips, ep in peers], at=0.0)
    return d


def test_drift_against_the_peer_directory(etc: Path, tmp_path: Path) -> None:
    put(etc, "wg0.conf", fixture("wireguard-ui_wg0.conf"))
    running = directory_with(
        "wg0", [(K1, ("10.252.1.1/32", "10.99.0.0/16"), "203.0.113.9:4000"), (K9, ("10.252.1.9/32",), None)]
    )
    src = make_source(tmp_path / "s", peers=running, paths=[str(etc)], drift_grace_secs=0)
    docs = scan(src)
    drift = [d for d in docs if d["event"]["action"] == "config-drift-detected"]
    assert [(d["wireguard"]["drift"]["kind"], d["wireguard"]["peer"]["public_key"]) for d in drift] == [
        ("allowed-ips-mismatch", K1),
        ("peer-only-in-file", K2),
        ("peer-only-running", K9),
    ]
    assert drift[0]["wireguard"]["drift"]["file"] == ["10.252.1.1/32"]
    assert drift[0]["wireguard"]["drift"]["running"] == ["10.252.1.1/32", "10.99.0.0/16"]
    assert drift[0]["wireguard"]["peer"]["name"] == "alice"
    assert drift[2]["wireguard"]["peer"] == {"public_key": K9, "allowed_ips": ["10.252.1.9/32"]}
    # the same drift is not reported again
    assert [e.data for e in src.check_drift(1.0)] == []
    # the running interface is fixed: each episode ends once
    running.publish(
        "wg0",
        [
            PeerInfo("wg0", k, None, ips, None, 0.0)
            for k, ips in [(K1, ("10.252.1.1/32",)), (K2, ("10.252.1.2/32", "192.168.50.0/24"))]
        ],
        at=1.0,
    )
    resolved = [e.data for e in src.check_drift(2.0)]
    assert sorted((d["event"]["action"], d["wireguard"]["drift"]["kind"]) for d in resolved) == [
        ("config-drift-resolved", "allowed-ips-mismatch"),
        ("config-drift-resolved", "peer-only-in-file"),
        ("config-drift-resolved", "peer-only-running"),
    ]
    assert [e.data for e in src.check_drift(3.0)] == []
    assert [d for d in docs + resolved if validate(d)] == []


def test_drift_grace_and_restart_dedup(etc: Path, tmp_path: Path) -> None:
    put(etc, "wg0.conf", fixture("wireguard-ui_wg0.conf"))
    running = directory_with("wg0", [(K1, ("10.252.1.1/32",), None)])
    src = make_source(tmp_path / "s", peers=running, paths=[str(etc)], drift_grace_secs=30)
    assert "config-drift-detected" not in actions(scan(src))
    assert [e.data for e in src.check_drift(time.time() + 60)] != []  # long after: reported
    src.save_state()
    again = make_source(tmp_path / "s", peers=running, paths=[str(etc)], drift_grace_secs=0)
    assert [e.data for e in again.check_drift(time.time() + 120)] == []  # episode persisted: not re-emitted


def test_no_running_view_means_no_drift(etc: Path, tmp_path: Path) -> None:
    put(etc, "wg0.conf", fixture("wireguard-ui_wg0.conf"))
    src = make_source(tmp_path / "s", paths=[str(etc)], drift_grace_secs=0)
    assert actions(scan(src)) == ["config-file-created"]


def test_every_action_is_valid_ecs_and_secret_free(
    etc: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    running = directory_with("wg0", [(K9, ("10.0.0.9/32",), None)])
    src = make_source(tmp_path / "s", peers=running, paths=[str(etc)], drift_grace_secs=0)
    docs: list[Doc] = []
    for f in sorted(FIX.glob("*.conf")):
        put(etc, "wg0.conf", f.read_text(), mode=0o644)
        docs += scan(src)
    put(etc, "wg0.conf", fixture("wg-portal_wg0.conf").replace("ListenPort = 51820", "ListenPort = x"), 0o640)
    docs += scan(src)
    (etc / "wg0.conf").unlink()
    docs += scan(src)
    src.save_state()
    seen = set(actions(docs))
    missing = set(ACTIONS) - seen - {"config-file-created"}
    assert "interface-key-changed" in seen and "hooks-changed" in seen
    assert {"config-parse-error", "config-file-deleted", "config-drift-resolved"} <= seen, missing
    problems = [f"{d['event']['action']}: {p}" for d in docs for p in validate(d)]
    assert problems == []
    secrets = all_fixture_secrets()
    assert len(secrets) >= 14
    assert_no_secrets(docs_blob(docs), secrets)
    assert_no_secrets(dump_logs(caplog.records), secrets)
    assert_no_secrets((tmp_path / "s" / "config_watch" / "cw.json").read_text(), secrets)
    assert_no_secrets(repr(src.ctx.telemetry.snapshot()), secrets)


def test_snapshot_repr_hides_the_bytes() -> None:
    s = ConfigSnapshot("k", "p", "wg0", b"PrivateKey = secret", None)
    assert "secret" not in repr(s)


def test_unreadable_and_oversized_files_are_counted(etc: Path, tmp_path: Path) -> None:
    put(etc, "wg0.conf", fixture("nyr_wg0.conf"))
    src = make_source(tmp_path / "s", paths=[str(etc)], max_file_bytes=10)
    assert scan(src) == []
    assert src.ctx.telemetry.errors["too_large@read"] == 1


def test_corrupt_state_is_moved_aside(etc: Path, tmp_path: Path) -> None:
    state = tmp_path / "s"
    (state / "config_watch").mkdir(parents=True)
    (state / "config_watch" / "cw.json").write_text("{not json")
    put(etc, "wg0.conf", fixture("nyr_wg0.conf"))
    src = make_source(state, paths=[str(etc)])
    assert src.ctx.telemetry.errors["state_corrupt@restore"] == 1
    assert actions(scan(src)) == ["config-file-created"]
    assert list((state / "config_watch").glob("cw.corrupt-*"))


def test_example_document(etc: Path, tmp_path: Path) -> None:
    """One full document, as docs/sources/config_watch.md shows it."""
    shutil.copy(FIX / "wireguard-ui_wg0.conf", etc / "wg0.conf")
    os.chmod(etc / "wg0.conf", 0o600)
    src = make_source(tmp_path / "s", paths=[str(etc)])
    scan(src)
    text = (
        (etc / "wg0.conf")
        .read_text()
        .replace("AllowedIPs = 10.252.1.1/32", "AllowedIPs = 10.252.1.1/32, 10.0.0.0/8")
    )
    (etc / "wg0.conf").write_text(text)
    d = next(d for d in scan(src) if d["event"]["action"] == "allowed-ips-changed")
    assert d["wireguard"]["change"]["allowed_ips"] == {
        "old": ["10.252.1.1/32"],
        "new": ["10.252.1.1/32", "10.0.0.0/8"],
        "added": ["10.0.0.0/8"],
        "removed": [],
    }
    assert d["wireguard"]["peer"]["labels"] == {
        "id": "cmfe7c2d0a1b2c3d4e5f6a7b",
        "email": "alice@example.com",
    }
    assert d["event"]["dataset"] == "wireguard.config"
    assert d["observer"]["ingress"]["interface"]["name"] == "wg0"

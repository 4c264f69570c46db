"""The source: ECS documents, replay = live, journald end to end, persistence, no key material."""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.sources.kernel_log.helpers import Running, make_source, strip_created
from tests.sources.kernel_log.journal_files import kernel, require_tools, wg_quick, write_journal
from tests.support.ecs import validate
from wgsiem.errors import Location
from wgsiem.sources.kernel_log.source import KernelLogSource, Record, record_from_entry

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "kernel_log"
SECRET = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
T0 = 1_700_000_000_000_000


def replay_docs(path: Path, state_dir: Path) -> list[dict]:
    src = make_source(state_dir, replay=True, journal=False)
    docs = []
    for item in KernelLogSource.replay_read(path):
        docs += [e.data for e in src.process(item.payload, item.time)]
    return docs


@pytest.mark.parametrize(
    "name", sorted(p.name for p in FIXTURES.glob("*.txt") if p.name != "wg_quick_unit.txt")
)
def test_every_fixture_gives_valid_ecs(name: str, tmp_path: Path) -> None:
    path = FIXTURES / name
    assert KernelLogSource.replay_detect(path, path.read_bytes()[:4096])
    docs = replay_docs(path, tmp_path)
    lines = path.read_text().splitlines()
    banners = sum("Copyright (C)" in line for line in lines)
    assert len(docs) == len(lines) - banners
    for d in docs:
        assert validate(d) == [], (d["event"]["action"], validate(d))


def test_exact_document(tmp_path: Path) -> None:
    # a copy whose mtime says January 2022: the "Dec 11" line is then from 2021 (RFC 3164 has no year)
    path = tmp_path / "kern.log"
    path.write_bytes((FIXTURES / "kernlog_wgportal_79.txt").read_bytes())
    mtime = datetime(2022, 1, 5, 8, 0, 0).astimezone().timestamp()
    os.utime(path, (mtime, mtime))
    src = make_source(tmp_path, replay=True, journal=False)
    items = list(KernelLogSource.replay_read(path))
    doc = src.process(items[0].payload, items[0].time)[0].data
    expected_ts = datetime(2021, 12, 11, 12, 56, 38).astimezone().timestamp()  # local time, as rsyslog wrote
    assert items[0].time == expected_ts
    from wgsiem.sources.wg_state.normalize import iso as to_iso

    assert doc == {
        "@timestamp": to_iso(expected_ts),
        "ecs": {"version": "9.5.0-dev"},
        "event": {
            "id": doc["event"]["id"],
            "kind": "event",
            "category": ["network", "authentication"],
            "type": ["denied"],
            "action": "invalid-handshake",
            "dataset": "wireguard.kernel_log",
            "module": "wireguard",
            "created": to_iso(expected_ts),
            "outcome": "failure",
        },
        "agent": doc["agent"],
        "observer": {
            "hostname": "gw-test",
            "type": "vpn",
            "vendor": "WireGuard",
            "product": "WireGuard",
            "ingress": {"interface": {"name": "wg0"}},
        },
        "network": {"transport": "udp", "protocol": "wireguard", "type": "ipv4", "direction": "inbound"},
        "log": {
            "level": "debug",
            "logger": "kernel",
            "file": {"path": str(path)},
        },
        "message": "wg0: Invalid handshake initiation from 109.38.151.104:39495",
        "wireguard": {
            "interface": {"name": "wg0"},
            "log": {"format": "rfc3164", "host": "poseidon"},
            "kernel": {"module": "wireguard", "uptime_secs": 265.694319},
            "endpoint": {"text": "109.38.151.104:39495"},
        },
        "source": {"ip": "109.38.151.104", "address": "109.38.151.104", "port": 39495},
        "related": {"ip": ["109.38.151.104"]},
    }
    from wgsiem.event import event_id

    first = path.read_text().splitlines()[0]
    assert doc["event"]["id"] == event_id("kernel_log", "gw-test", "line", 0, first)


def test_ratelimit_suppression_is_its_own_event(tmp_path: Path) -> None:
    docs = replay_docs(FIXTURES / "dmesg_pivpn_1077.txt", tmp_path)
    last = docs[-1]
    assert last["event"]["action"] == "messages-suppressed"
    assert last["wireguard"]["kernel"] == {
        "module": "net_ratelimit",
        "suppressed": 2,
        "uptime_secs": 62871.179089,
    }
    assert last["log"]["level"] == "warning"


def test_journal_wg_quick_entry_has_unit_and_user(tmp_path: Path) -> None:
    entry = {
        "__CURSOR": "s=1;i=2",
        "__REALTIME_TIMESTAMP": str(T0),
        "_TRANSPORT": "stdout",
        "SYSLOG_IDENTIFIER": "wg-quick",
        "_SYSTEMD_UNIT": "wg-quick@wg0.service",
        "_UID": "0",
        "_AUDIT_LOGINUID": "1000",
        "_PID": "4242",
        "_COMM": "wg-quick",
        "PRIORITY": "6",
        "MESSAGE": f"[#] wg set wg0 private-key <(echo {SECRET})",
    }
    rec = record_from_entry(entry, Location("j", 1))
    assert isinstance(rec, Record)
    src = make_source(tmp_path, journal=False)
    doc = src.process(rec, rec.line.time or 0.0)[0].data
    assert validate(doc) == []
    assert doc["event"]["action"] == "interface-reconfigured"
    assert doc["service"] == {"name": "wg-quick@wg0.service"}
    assert doc["user"] == {"id": "1000"}
    assert doc["process"] == {
        "name": "wg-quick",
        "command_line": "wg set wg0 private-key [REDACTED]",
        "user": {"id": "0"},
        "pid": 4242,
    }
    assert doc["wireguard"]["interface"] == {"name": "wg0"}
    assert SECRET not in json.dumps(doc)


def test_replay_of_a_kern_log_gives_the_live_events(tmp_path: Path) -> None:
    """The same kern.log processed live through run() and by replay → the same documents."""
    now = datetime.now()
    stamp = now.strftime("%b %e %H:%M:%S")
    lines = []
    for name in ("kernlog_wgportal_79.txt", "journalctl_k_k8s03.txt"):
        for line in (FIXTURES / name).read_text().splitlines():
            lines.append(stamp + line[15:])  # same lines, dated today (the year is then unambiguous)
    lines.insert(2, stamp + " gw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=192.0.2.1")
    lines.append(stamp + " gw wg-quick[77]: [#] ip link delete dev wg0")
    log = tmp_path / "kern.log"
    log.write_text("\n".join(lines) + "\n")

    async def live() -> list[dict]:
        r = Running(
            make_source(
                tmp_path / "live",
                journal=False,
                files=[str(log)],
                files_from_start=True,
                poll_interval_secs=0.05,
            )
        )
        try:
            await r.until(lambda d: len(d) >= len(lines) - 1, what="every line")
        finally:
            await r.close()
        return r.docs

    live_docs = asyncio.run(live())
    replayed = replay_docs(log, tmp_path / "replay")
    assert len(replayed) == len(lines) - 1
    assert [strip_created(d) for d in live_docs] == [strip_created(d) for d in replayed]


def test_live_file_resumes_after_restart(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    stamp = datetime.now().strftime("%b %e %H:%M:%S")
    log.write_text(f"{stamp} gw kernel: wireguard: wg0: Peer 1 created\n")
    cfg = {"journal": False, "files": [str(log)], "files_from_start": True, "poll_interval_secs": 0.05}

    async def run_once(expect: int) -> list[dict]:
        r = Running(make_source(tmp_path / "state", **cfg))
        try:
            await r.until(lambda d: len(d) >= expect)
        finally:
            await r.close()
        return r.docs

    first = asyncio.run(run_once(1))
    with open(log, "a") as fh:
        fh.write(f"{stamp} gw kernel: wireguard: wg0: Peer 2 created\n")
    second = asyncio.run(run_once(1))
    assert [d["wireguard"]["peer"]["id"] for d in first + second] == [1, 2]
    state = json.loads((tmp_path / "state" / "kernel_log" / "kl.json").read_text())
    assert state["files"][str(log)]["line"] == 2
    assert oct(os.stat(tmp_path / "state" / "kernel_log" / "kl.json").st_mode & 0o777) == "0o600"


def test_live_journal_end_to_end_with_restart(tmp_path: Path) -> None:
    require_tools()
    jdir = tmp_path / "journal"
    jdir.mkdir()
    now_us = int(time.time() * 1e6)
    write_journal(
        jdir / "system.journal",
        kernel("wireguard: wg0: Interface created", now_us),
        wg_quick(f"[#] wg set wg0 private-key <(echo {SECRET})", now_us + 1),
    )
    cfg = {"journal_directory": str(jdir), "journal_since_now": False}

    async def scenario() -> tuple[list[dict], list[dict]]:
        r = Running(make_source(tmp_path / "state", **cfg))
        try:
            await r.until(lambda d: len(d) >= 2, what="2 journal events")
            write_journal(jdir / "system.journal", kernel("wireguard: wg0: Peer 1 created", now_us + 2))
            await r.until(lambda d: len(d) >= 3, what="the appended entry")
        finally:
            await r.close()
        write_journal(jdir / "system.journal", kernel("wireguard: wg0: Peer 2 created", now_us + 3))
        r2 = Running(make_source(tmp_path / "state", **cfg))
        try:
            await r2.until(lambda d: len(d) >= 1, what="the entry written while down")
        finally:
            await r2.close()
        return r.docs, r2.docs

    first, second = asyncio.run(scenario())
    assert [d["event"]["action"] for d in first] == [
        "interface-created",
        "interface-reconfigured",
        "peer-created",
    ]
    assert [d["wireguard"]["peer"]["id"] for d in second] == [2]
    for d in first + second:
        assert validate(d) == []
        assert d["wireguard"]["log"]["format"] == "journal"
    assert first[1]["service"]["name"] == "wg-quick@wg0.service"
    # no key material anywhere: documents, state, cursor
    blob = json.dumps(first + second)
    for p in (tmp_path / "state").rglob("*"):
        if p.is_file():
            blob += p.read_text()
    assert SECRET not in blob


def test_journal_export_replay(tmp_path: Path) -> None:
    entries = [
        {
            "__CURSOR": "c1",
            "__REALTIME_TIMESTAMP": str(T0),
            "_TRANSPORT": "kernel",
            "PRIORITY": "7",
            "MESSAGE": "wireguard: wg0: Peer 1 created",
        },
        {"__CURSOR": "c2", "__REALTIME_TIMESTAMP": str(T0 + 1), "_TRANSPORT": "syslog", "MESSAGE": "sshd"},
        {
            "__CURSOR": "c3",
            "__REALTIME_TIMESTAMP": str(T0 + 2),
            "_TRANSPORT": "kernel",
            "MESSAGE": [
                110,
                101,
                116,
                95,
                114,
                97,
                116,
                101,
                108,
                105,
                109,
                105,
                116,
                58,
                32,
                51,
                32,
                99,
                97,
                108,
                108,
                98,
                97,
                99,
                107,
                115,
                32,
                115,
                117,
                112,
                112,
                114,
                101,
                115,
                115,
                101,
                100,
            ],
        },
    ]
    path = tmp_path / "export.json"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    assert KernelLogSource.replay_detect(path, path.read_bytes()[:4096])
    items = list(KernelLogSource.replay_read(path))
    assert [i.time for i in items] == [1_700_000_000.0, 1_700_000_000.000002]
    docs = replay_docs(path, tmp_path)
    assert [d["event"]["action"] for d in docs] == ["peer-created", "messages-suppressed"]
    assert docs[1]["wireguard"]["kernel"]["suppressed"] == 3


def test_replay_detect_rejects_other_files(tmp_path: Path) -> None:
    conf = tmp_path / "wg0.conf"
    conf.write_text("[Interface]\nListenPort = 51820\n")
    assert not KernelLogSource.replay_detect(conf, conf.read_bytes())
    assert not KernelLogSource.replay_detect(conf, b"\x00\x01binary")


def test_plain_dmesg_replay_uses_mtime_minus_last_uptime(tmp_path: Path) -> None:
    path = tmp_path / "dmesg.txt"
    path.write_text((FIXTURES / "dmesg_wsl_10841.txt").read_text())
    os.utime(path, (1_700_000_100.0, 1_700_000_100.0))
    items = list(KernelLogSource.replay_read(path))
    assert items[-1].time == pytest.approx(1_700_000_100.0)
    assert items[0].time == pytest.approx(1_700_000_100.0 - (25.508983 - 15.753760))


def test_journal_export_of_another_program_is_left_to_others(tmp_path: Path) -> None:
    path = tmp_path / "wggo.json"
    entry = {
        "__REALTIME_TIMESTAMP": str(T0),
        "_TRANSPORT": "stdout",
        "SYSLOG_IDENTIFIER": "wireguard-go",
        "MESSAGE": "DEBUG: (wg0) 2026/11/25 17:00:00 peer(AAAA…BBBB) - Sending keepalive packet",
    }
    path.write_text(json.dumps(entry) + "\n")
    assert not KernelLogSource.replay_detect(path, path.read_bytes())


def test_live_bad_line_is_counted_with_its_location_and_neighbours_kept(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    stamp = datetime.now().strftime("%b %e %H:%M:%S")
    log.write_text(
        f"{stamp} gw kernel: wireguard: wg0: Peer 1 created\n"
        "Feb 30 99:99:99 gw kernel: wireguard: wg0: Peer 9 created\n"
        f"{stamp} gw kernel: wireguard: wg0: Peer 2 created\n"
    )
    src = make_source(
        tmp_path / "s", journal=False, files=[str(log)], files_from_start=True, poll_interval_secs=0.05
    )

    async def scenario() -> list[dict]:
        r = Running(src)
        try:
            await r.until(lambda d: len(d) >= 2)
        finally:
            await r.close()
        return r.docs

    docs = asyncio.run(scenario())
    assert [d["wireguard"]["peer"]["id"] for d in docs] == [1, 2]
    assert dict(src.telemetry.errors) == {"parse@parse_line": 1}
    assert f"{log}:2" in (src.telemetry.last_error or "")

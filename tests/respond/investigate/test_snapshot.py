"""``snapshot``: redaction (exact and property), the case folder, and a real lab gateway."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wgsiem.lab.runtime import Lab
from wgsiem.respond.actions.base import Target
from wgsiem.respond.actions.snapshot import IncidentSnapshot, redact_dump

from .support import FakeExecutor, context, local_executor

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
DUMP = (FIXTURES / "wg" / "dump_3_peers.txt").read_text()
PEER = "LMRy47Sg4S6IpX0TapE5XKyBED4Mbj15lG56zxQYzkM="
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _secrets_of(dump: str) -> set[str]:
    out = set()
    for line in dump.splitlines():
        f = line.split("\t")
        if len(f) == 5:
            out.add(f[1])
        elif len(f) == 9 and f[2] != "(none)":
            out.add(f[2])
    return out


def test_redact_real_dump_exactly() -> None:
    expected = []
    for line in DUMP.splitlines():
        f = line.split("\t")
        if len(f) == 5:
            f[1] = "(redacted)"
        elif f[2] != "(none)":
            f[2] = "(redacted)"
        expected.append("\t".join(f))
    assert redact_dump(DUMP) == "\n".join(expected) + "\n"
    assert not any(s in redact_dump(DUMP) for s in _secrets_of(DUMP))
    assert PEER in redact_dump(DUMP)  # public keys stay: they identify the peers


keys = st.text(alphabet=B64, min_size=42, max_size=42).map(lambda s: s + "A=")
cells = st.one_of(keys, st.text(max_size=12), st.sampled_from(["(none)", "off", "51820", "0"]))


@given(st.lists(st.tuples(keys, st.lists(cells, min_size=0, max_size=10), st.integers(0, 10)), max_size=8))
def test_no_secret_survives_any_line_shape(rows: list[tuple[str, list[str], int]]) -> None:
    """Wherever a secret sits in whatever line shape, it is gone — except as a 9-field line's public
    key (field 2), which is by construction not a secret position."""
    lines, secrets_ = [], set()
    for secret, cells_, pos in rows:
        fields = list(cells_)
        fields.insert(min(pos, len(fields)), secret)
        lines.append("\t".join(fields))
        public_pos = len(fields) in (5, 9) and fields.index(secret) == (2 if len(fields) == 5 else 1)
        if not public_pos:
            secrets_.add(secret)
    out = redact_dump("\n".join(lines))
    for line in out.splitlines():
        f = line.split("\t")
        exposed = {f[2]} if len(f) == 5 else {f[1]} if len(f) == 9 else set()
        for secret in secrets_ - exposed:
            assert secret not in line


def _answers() -> dict[tuple[str, ...], Any]:
    answers: dict[tuple[str, ...], Any] = {
        ("wg", "show", "all", "dump"): DUMP.encode(),
        ("ip", "route"): b"default via 192.0.2.1 dev eth0\n",
        ("ip", "-6", "route"): b"2001:db8::/64 dev eth0 proto kernel metric 256\n",
        ("ip", "-brief", "addr"): b"eth0 UP 192.0.2.10/24\n",
        ("nft", "list", "ruleset"): b"table inet wgsiem {\n}\n",
        ("cat", "/proc/net/nf_conntrack"): b"ipv4 2 udp 17 29 src=203.0.113.12 dst=192.0.2.10\n",
    }
    return answers


def test_snapshot_folder_manifest_and_modes(tmp_path: Path) -> None:
    events = tmp_path / "events.ndjson"
    lines = [
        {"event": {"id": "e1"}, "wireguard": {"peer": {"public_key": PEER}}},
        {"event": {"id": "e2"}, "source": {"ip": "198.51.100.1"}},
        {"event": {"id": "a1", "kind": "alert"}, "source": {"ip": "203.0.113.12"}},
    ]
    events.write_text("".join(json.dumps(d) + "\n" for d in lines) + "not json\n")
    executor = FakeExecutor(_answers())
    ctx = context(executor, tmp_path, recent_events=str(events))
    action = IncidentSnapshot()
    target = Target(interface="wgfxg0", peer_public_key=PEER, endpoint_ip="203.0.113.12", alert_id="a1")

    async def run() -> Any:
        plan = await action.plan(target, {}, ctx)
        return plan, await action.apply(plan, ctx)

    plan, result = asyncio.run(run())
    assert plan.affected_peers == () and not plan.reversible
    assert result.ok and result.verified, result
    folder = Path(result.details["folder"])
    assert folder.parent == tmp_path / "case"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    names = sorted(os.listdir(folder))
    assert names == sorted(
        [
            "conntrack.txt",
            "events.ndjson",
            "ip-6-route.txt",
            "ip-addr.txt",
            "ip-route.txt",
            "manifest.json",
            "nftables.txt",
            "wg-dump.txt",
        ]
    )
    assert all(stat.S_IMODE((folder / n).stat().st_mode) == 0o600 for n in names)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["conntrack_source"] == "/proc/net/nf_conntrack"  # conntrack -L "not installed"
    assert manifest["executor"] == "fake" and manifest["target"]["peer_public_key"] == PEER
    for entry in manifest["files"]:
        assert hashlib.sha256((folder / entry["name"]).read_bytes()).hexdigest() == entry["sha256"]
    kept = [json.loads(x)["event"]["id"] for x in (folder / "events.ndjson").read_text().splitlines()]
    assert kept == ["e1", "a1"]
    text = "".join((folder / n).read_text() for n in names)
    assert not any(s in text for s in _secrets_of(DUMP))


def test_conntrack_tool_preferred_and_failures_reported(tmp_path: Path) -> None:
    answers = _answers()
    answers[("conntrack", "-L")] = b"udp 17 src=203.0.113.12\n"
    answers[("nft", "list", "ruleset")] = 1
    executor = FakeExecutor(answers)

    async def recent(target: Target, limit: int) -> list[dict[str, Any]]:
        return [{"event": {"id": "from-store"}, "user": {"name": target.user}}]

    ctx = context(executor, tmp_path, recent_events=recent)

    async def run() -> Any:
        action = IncidentSnapshot()
        return await action.apply(await action.plan(Target(user="alice"), {"max_events": 5}, ctx), ctx)

    result = asyncio.run(run())
    assert result.ok and result.details["conntrack_source"] == "conntrack -L"
    assert "nftables.txt" in result.details["errors"] and "nftables.txt" not in result.details["files"]
    folder = Path(result.details["folder"])
    assert json.loads((folder / "events.ndjson").read_text())["user"]["name"] == "alice"


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    ctx = context(FakeExecutor(_answers()), tmp_path)
    ctx.dry_run = True

    async def run() -> Any:
        action = IncidentSnapshot()
        return await action.apply(await action.plan(Target(), {}, ctx), ctx)

    assert asyncio.run(run()).summary.startswith("dry run")
    assert not (tmp_path / "case").exists()


@pytest.mark.component
def test_snapshot_of_the_lab_gateway(make_lab: Callable[..., Lab], tmp_path: Path) -> None:
    lab = make_lab(clients=2)
    lab.connect(1)
    lab.connect(2)
    ctx = context(local_executor(lab.gateway_namespace), tmp_path)
    target = Target(interface=lab.gateway_interface, peer_public_key=lab.client_public_key(1))

    async def run() -> Any:
        action = IncidentSnapshot()
        return await action.apply(await action.plan(target, {}, ctx), ctx)

    result = asyncio.run(run())
    assert result.ok and result.verified, result
    folder = Path(result.details["folder"])
    everything = b"".join(p.read_bytes() for p in folder.iterdir())
    leaked = [s for s in lab.secrets() if s.encode() in everything]
    assert leaked == []
    # wireguard-go's UAPI sockets are host-wide: `wg show all` in the namespace lists the clients too
    rows = [line.split("\t") for line in (folder / "wg-dump.txt").read_text().splitlines()]
    rows = [r for r in rows if r[0] == lab.gateway_interface]
    peers = {r[1]: r for r in rows if len(r) == 9}
    live = {
        f[1]
        for f in (p.split("\t") for p in lab.gateway_dump().splitlines())
        if len(f) == 9 and f[0] == lab.gateway_interface
    }
    assert set(peers) == live and {lab.client_public_key(1), lab.client_public_key(2)} <= live
    for key, row in peers.items():
        assert row[0] == lab.gateway_interface
        assert row[2] in ("(none)", "(redacted)")
        if key in (lab.client_public_key(1), lab.client_public_key(2)):
            assert row[3].startswith("203.0.113.")  # the clients' endpoints as the gateway saw them
    (iface,) = [r for r in rows if len(r) == 5]
    assert iface[1] == "(redacted)" and iface[2] == lab.gateway_public_key
    every = [line.split("\t") for line in (folder / "wg-dump.txt").read_text().splitlines()]
    assert all(r[1] == "(redacted)" for r in every if len(r) == 5)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["conntrack_source"] in ("conntrack -L", "/proc/net/nf_conntrack")
    assert manifest["executor"] == f"netns:{lab.gateway_namespace}"
    assert "ip-route.txt" in result.details["files"] and "nftables.txt" in result.details["files"]

"""BlockEndpoint and ThrottlePeer against real nftables in a lab gateway namespace (wireguard-go)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from wgsiem.lab.runtime import Lab
from wgsiem.respond.actions.base import ActionContext, Target
from wgsiem.respond.actions.block import BlockEndpoint
from wgsiem.respond.actions.common import element_present, list_table, table_sets
from wgsiem.respond.actions.throttle import ThrottlePeer

from .support import handshake_fails, run, wait_for

pytestmark = pytest.mark.component

LabCtx = Callable[..., tuple[Lab, ActionContext]]


def outer_ip(i: int) -> str:
    return f"203.0.113.{10 + i}"


def blocked(ctx: ActionContext, address: str, set_name: str = "blocked4") -> int | None:
    sets = table_sets(run(list_table(ctx.executor, "wgsiem")))
    return element_present(sets.get(set_name, {}), address)


def drop_table(ctx: ActionContext) -> None:
    run(ctx.executor.run(["nft", "delete", "table", "inet", "wgsiem"], check=False))


def test_block_is_idempotent_verified_and_undone(lab_ctx: LabCtx) -> None:
    lab, ctx = lab_ctx(clients=2)
    try:
        lab.connect(1)
        action = BlockEndpoint()
        target = Target(interface=lab.gateway_interface, endpoint_ip=outer_ip(1))
        plan = run(action.plan(target, {"ttl_secs": 600}, ctx))
        assert plan.details["listen_ports"] == [51820]
        assert plan.affected_peers == (lab.client_public_key(1),)
        first = run(action.apply(plan, ctx))
        second = run(action.apply(plan, ctx))
        assert first.ok and first.verified and second.ok and second.verified
        table = run(ctx.executor.run(["nft", "list", "table", "inet", "wgsiem"])).stdout.decode()
        assert table.count("203.0.113.11") == 1 and table.count("wgsiem-block4") == 1
        left = blocked(ctx, outer_ip(1))
        assert left is not None and 590 <= left <= 600
        assert handshake_fails(lab, 1)
        assert lab.connect(2).last_handshake_sec > 0  # only the blocked endpoint is affected
        assert first.undo is not None
        undone = run(action.undo(first.undo, ctx))
        again = run(action.undo(first.undo, ctx))
        assert undone.ok and undone.verified and again.ok
        assert blocked(ctx, outer_ip(1)) is None
        assert lab.connect(1).last_handshake_sec > 0
    finally:
        drop_table(ctx)


_BLOCKER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from wgsiem.respond.actions.base import ActionContext, Target
    from wgsiem.respond.actions.block import BlockEndpoint
    from wgsiem.respond.executors import LocalExecutor

    ns, iface, ip, ttl, state = sys.argv[1:6]
    ctx = ActionContext(LocalExecutor(ns), False, Path(state), Path(state), "gw")
    async def main():
        a = BlockEndpoint()
        plan = await a.plan(Target(interface=iface, endpoint_ip=ip), {"ttl_secs": int(ttl)}, ctx)
        res = await a.apply(plan, ctx)
        print("applied" if res.ok else res.error, flush=True)
    asyncio.run(main())
    time.sleep(3600)  # a wgsiem that stays up until killed
    """
)


def test_block_expires_in_the_kernel_after_the_process_that_added_it_was_killed(
    lab_ctx: LabCtx, tmp_path: Path
) -> None:
    lab, ctx = lab_ctx(clients=1)
    try:
        lab.connect(1)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _BLOCKER,
                lab.gateway_namespace,
                lab.gateway_interface,
                outer_ip(1),
                "15",
                str(tmp_path / "s"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "applied"
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        assert blocked(ctx, outer_ip(1)) is not None
        assert handshake_fails(lab, 1)
        wait_for(lambda: blocked(ctx, outer_ip(1)) is None, 30, "the kernel to expire the block")
        assert lab.connect(1).last_handshake_sec > 0
    finally:
        drop_table(ctx)


def test_throttle_limits_the_endpoint_per_address_and_is_lifted(lab_ctx: LabCtx) -> None:
    lab, ctx = lab_ctx(clients=2)
    try:
        lab.connect(1)
        lab.connect(2)
        action = ThrottlePeer()
        target = Target(interface=lab.gateway_interface, peer_public_key=lab.client_public_key(1))
        plan = run(action.plan(target, {"rate_kbytes_per_sec": 8, "ttl_secs": 300}, ctx))
        assert plan.details["address"] == outer_ip(1)
        res = run(action.apply(plan, ctx))
        assert res.ok and res.verified and run(action.apply(plan, ctx)).ok
        table = run(ctx.executor.run(["nft", "list", "table", "inet", "wgsiem"])).stdout.decode()
        assert table.count("limit rate over 8 kbytes/second") == 2  # IPv4 and IPv6 rules, once each
        # 400 kB as fast as possible: the throttled peer gets a small part through, the other all of it
        got1 = lab.burst(1, 400_000, timeout=60)
        got2 = lab.send(2, 400_000, timeout=60)
        assert got1 < 200_000 <= got2
        assert res.undo is not None
        assert run(action.undo(res.undo, ctx)).verified
        assert blocked(ctx, outer_ip(1), "thr4_r8") is None
        assert lab.send(1, 400_000, timeout=60) >= 400_000
    finally:
        drop_table(ctx)


def test_dry_run_changes_nothing(lab_ctx: LabCtx) -> None:
    lab, ctx = lab_ctx(clients=1)
    ctx.dry_run = True
    action = BlockEndpoint()
    plan = run(action.plan(Target(interface=lab.gateway_interface, endpoint_ip="198.51.100.77"), {}, ctx))
    res = run(action.apply(plan, ctx))
    assert res.ok and not res.verified and res.summary.startswith("dry run")
    assert run(list_table(ctx.executor, "wgsiem")) == []

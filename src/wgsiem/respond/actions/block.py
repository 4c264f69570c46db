"""Tier 1: block an endpoint address from reaching WireGuard, for a while, in the kernel.

The layout, in table ``inet <nft_table>`` (default ``wgsiem``)::

    set wg_ports  { type inet_service; }                 # the WireGuard listen port(s)
    set blocked4  { type ipv4_addr; flags timeout; }
    set blocked6  { type ipv6_addr; flags timeout; }
    chain block_input { type filter hook input priority filter - 10; policy accept;
        udp dport @wg_ports ip saddr @blocked4 counter drop comment "wgsiem-block4"
        udp dport @wg_ports ip6 saddr @blocked6 counter drop comment "wgsiem-block6" }

A block is one set element with ``timeout <ttl>s``: the kernel removes it when the TTL runs out, so a
block expires even if wgsiem dies. Priority ``filter - 10`` runs before the host's own filter chains,
so an ``accept`` there cannot let a blocked endpoint through. Each apply is one ``nft -f -``
transaction that (re)declares the layout, rewrites the chain's two rules and refreshes the element —
applying twice leaves the same state with a fresh TTL. Reads use ``nft -j`` (JSON).
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

from wgsiem.errors import ConfigError, WgsiemError
from wgsiem.respond.actions.base import ActionContext, ActionPlan, ActionResult, Target
from wgsiem.respond.actions.common import (
    element_present,
    list_table,
    listen_ports,
    nft_apply,
    nft_table,
    peers_at,
    ports_param,
    refresh_element,
    remove_set_element,
    rule_comments,
    table_sets,
    ttl_param,
)

__all__ = ["BlockEndpoint", "block_layout"]

CHAIN = "block_input"
PRIORITY = "filter - 10"


def block_layout(table: str, ports: list[int]) -> str:
    """The nft lines that (re)create the block layout and its rules, idempotently."""
    return (
        f"table inet {table} {{\n"
        "  set wg_ports { type inet_service; }\n"
        "  set blocked4 { type ipv4_addr; flags timeout; }\n"
        "  set blocked6 { type ipv6_addr; flags timeout; }\n"
        f"  chain {CHAIN} {{ type filter hook input priority {PRIORITY}; policy accept; }}\n"
        "}\n"
        f"flush chain inet {table} {CHAIN}\n"
        f"add rule inet {table} {CHAIN} udp dport @wg_ports ip saddr @blocked4 counter drop "
        'comment "wgsiem-block4"\n'
        f"add rule inet {table} {CHAIN} udp dport @wg_ports ip6 saddr @blocked6 counter drop "
        'comment "wgsiem-block6"\n'
        f"add element inet {table} wg_ports {{ {', '.join(str(p) for p in ports)} }}\n"
    )


def _ports(ports: list[int]) -> str:
    return ", ".join(map(str, ports))


def _set_of(address: str) -> str:
    return "blocked4" if ipaddress.ip_address(address).version == 4 else "blocked6"


class BlockEndpoint:
    """``block_endpoint``: drop UDP from the alert's endpoint address to the WireGuard port(s).

    Params: ``ttl_secs`` (default 900), ``listen_ports`` (default: the deployment's ``listen_ports``
    setting, else the port the target interface listens on).
    """

    name: ClassVar[str] = "block_endpoint"
    tier: ClassVar[int] = 1
    reversible: ClassVar[bool] = True

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        unknown = set(params) - {"ttl_secs", "listen_ports"}
        if unknown:
            raise ConfigError(
                f"block_endpoint: unknown params {sorted(unknown)}", fix="use ttl_secs, listen_ports"
            )
        out: dict[str, Any] = {"ttl_secs": ttl_param(params)}
        if params.get("listen_ports") is not None:
            out["listen_ports"] = ports_param(params["listen_ports"])
        return out

    async def plan(self, target: Target, params: dict[str, Any], ctx: ActionContext) -> ActionPlan:
        params = self.validate_params(params)
        if not target.endpoint_ip:
            raise ConfigError(
                "block_endpoint needs the alert's endpoint address", fix="the rule must set source.ip"
            )
        address = str(ipaddress.ip_address(target.endpoint_ip))
        ports = await listen_ports(ctx, target.interface, params)
        where = f" on {target.interface}" if target.interface else ""
        return ActionPlan(
            action=self.name,
            target=target,
            params=params,
            summary=f"block {address}{where} (udp ports {_ports(ports)}) for {params['ttl_secs']} s",
            affected_peers=await peers_at(ctx, target.interface, address),
            reversible=True,
            details={
                "table": nft_table(ctx),
                "set": _set_of(address),
                "address": address,
                "listen_ports": ports,
                "ttl_secs": params["ttl_secs"],
            },
        )

    async def apply(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        d = plan.details
        table, set_name, address, ttl = d["table"], d["set"], d["address"], d["ttl_secs"]
        undo = {"table": table, "set": set_name, "address": address}
        if ctx.dry_run:
            return ActionResult(ok=True, summary=f"dry run: would {plan.summary}", details=dict(d))
        try:
            await nft_apply(
                ctx.executor,
                block_layout(table, d["listen_ports"]) + refresh_element(table, set_name, address, ttl),
            )
            verified, left = await self._check(ctx, table, set_name, address, d["listen_ports"])
        except WgsiemError as exc:
            return ActionResult(ok=False, summary=f"could not {plan.summary}", undo=undo, error=exc.render())
        if not verified:
            return ActionResult(
                ok=False,
                summary=f"{address} is not in {table}/{set_name} after adding it",
                undo=undo,
                error="block not found when read back",
            )
        return ActionResult(
            ok=True,
            summary=f"blocked {address} for {ttl} s",
            verified=True,
            undo=undo,
            details={**d, "expires_in_secs": left},
        )

    async def _check(
        self, ctx: ActionContext, table: str, set_name: str, address: str, ports: list[int]
    ) -> tuple[bool, int | None]:
        objs = await list_table(ctx.executor, table)
        sets = table_sets(objs)
        left = element_present(sets.get(set_name, {}), address)
        rules_ok = {"wgsiem-block4", "wgsiem-block6"} <= rule_comments(objs, CHAIN)
        ports_ok = {str(p) for p in ports} <= set(sets.get("wg_ports", {}))
        return left is not None and left != -1 and rules_ok and ports_ok, left

    async def undo(self, undo: dict[str, Any], ctx: ActionContext) -> ActionResult:
        table, set_name, address = undo["table"], undo["set"], undo["address"]
        if ctx.dry_run:
            return ActionResult(ok=True, summary=f"dry run: would unblock {address}")
        try:
            gone = await remove_set_element(ctx.executor, table, set_name, address)
        except WgsiemError as exc:
            return ActionResult(ok=False, summary=f"could not unblock {address}", error=exc.render())
        return ActionResult(
            ok=gone, verified=gone, summary=f"unblocked {address}" if gone else f"{address} is still blocked"
        )

"""The contract of a response action and of where it runs.

The playbook engine (``wgsiem.respond.engine``) decides *whether* and *when*; an action knows *how*.
Every action is a class with this shape, registered by name in :data:`ACTION_CLASSES`:

* ``plan(target, params, ctx)`` — pure inspection, no change: what would be done, to which peers, and
  whether it can be undone. Plans are what approvers see and what dry-run prints.
* ``apply(plan, ctx)`` — make the change, **idempotently** (applying twice leaves the same state), then
  **check the result** (read it back) and return an :class:`ActionResult`; a change that cannot be
  verified is ``ok=False``, never silently half-applied. ``undo`` data is everything needed to reverse
  it, with no secret in it (a revoked peer's AllowedIPs/endpoint/keepalive yes; a preshared key: store
  only a reference such as the config backup's path).
* ``undo(undo, ctx)`` — reverse a reversible action, idempotently, and check the result.

Commands run through an :class:`Executor`: on the local gateway (optionally inside a network
namespace, which is how the lab's gateway is reached) or on a remote gateway over SSH. Actions never
call ``subprocess`` directly.

Secrets (private keys, preshared keys) never appear in a plan, a result, an undo record, a log line or
an exception message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

__all__ = [
    "ACTION_CLASSES",
    "ActionContext",
    "ActionPlan",
    "ActionResult",
    "CommandResult",
    "Executor",
    "Target",
]

ACTION_CLASSES: dict[str, str] = {
    # tier 1 — contain
    "block_endpoint": "wgsiem.respond.actions.block:BlockEndpoint",
    "throttle_peer": "wgsiem.respond.actions.throttle:ThrottlePeer",
    # tier 2 — revoke
    "revoke_peer": "wgsiem.respond.actions.revoke:RevokePeer",
    "rotate_peer_keys": "wgsiem.respond.actions.rotate:RotatePeerKeys",
    "disable_user": "wgsiem.respond.actions.revoke:DisableUser",
    # tier 3 — investigate
    "snapshot": "wgsiem.respond.actions.snapshot:IncidentSnapshot",
    "packet_capture": "wgsiem.respond.actions.capture:PacketCapture",
    "open_case": "wgsiem.respond.actions.notify:OpenCase",
    "notify": "wgsiem.respond.actions.notify:Notify",
}
"""Action name (as written in playbooks) → ``module:Class``, imported lazily."""


@dataclass(frozen=True, slots=True)
class Target:
    """What an action acts upon, taken from the alert's entity and evidence."""

    interface: str | None = None
    peer_public_key: str | None = None
    endpoint_ip: str | None = None
    endpoint_port: int | None = None
    user: str | None = None
    alert_id: str | None = None
    rule_id: str | None = None


@dataclass(frozen=True, slots=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes


class Executor(Protocol):
    """Runs commands and touches files on one gateway (local, local namespace, or SSH)."""

    name: str
    """For audit records: ``local``, ``netns:<ns>``, ``ssh:<user>@<host>``."""

    async def run(
        self, argv: list[str], *, input: bytes | None = None, timeout_secs: float = 30.0, check: bool = True
    ) -> CommandResult:
        """Run ``argv`` (no shell). ``check`` raises :class:`wgsiem.errors.WgsiemError` on a non-zero
        exit, with the command and its stderr (which must not hold secrets: pass them via ``input``)."""
        ...

    async def read_file(self, path: str) -> bytes: ...

    async def write_file(self, path: str, data: bytes, *, mode: int) -> None:
        """Atomic replace (temporary file, fsync, rename) with ``mode``."""
        ...


@dataclass(slots=True)
class ActionContext:
    executor: Executor
    dry_run: bool
    state_dir: Path
    """Private directory for action state (backups, case folders live under it unless configured)."""
    case_dir: Path
    """This incident's folder (snapshots, captures)."""
    hostname: str
    settings: dict[str, Any] = field(default_factory=dict)
    """Deployment settings an action needs (config file paths per interface, nft table name, hooks)."""


@dataclass(frozen=True, slots=True)
class ActionPlan:
    action: str
    target: Target
    params: dict[str, Any]
    summary: str
    """One human sentence: what will change ("block 203.0.113.7 on wg0 for 900 s")."""
    affected_peers: tuple[str, ...] = ()
    """Public keys touched (the policy requires approval above N)."""
    reversible: bool = False
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ActionResult:
    ok: bool
    summary: str
    verified: bool = False
    """The effect was read back and found as intended."""
    undo: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class Action(Protocol):
    name: ClassVar[str]
    tier: ClassVar[int]
    reversible: ClassVar[bool]

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Return normalized params or raise :class:`wgsiem.errors.ConfigError` naming the fix."""
        ...

    async def plan(self, target: Target, params: dict[str, Any], ctx: ActionContext) -> ActionPlan: ...

    async def apply(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult: ...

    async def undo(self, undo: dict[str, Any], ctx: ActionContext) -> ActionResult: ...

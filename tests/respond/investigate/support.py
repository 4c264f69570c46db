"""Executors for the investigate-action tests: the real ``LocalExecutor`` when present (else a minimal
stand-in that runs argv the same way), and a scripted fake for unit tests."""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wgsiem.errors import WgsiemError
from wgsiem.respond.actions.base import ActionContext, CommandResult


class MinimalExecutor:
    """``asyncio.create_subprocess_exec``, prefixed with ``ip netns exec <ns>`` when given."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self.name = f"netns:{netns}" if netns else "local"

    async def run(
        self, argv: list[str], *, input: bytes | None = None, timeout_secs: float = 30.0, check: bool = True
    ) -> CommandResult:
        full = (["ip", "netns", "exec", self.netns] if self.netns else []) + list(argv)
        try:
            proc = await asyncio.create_subprocess_exec(
                *full,
                stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise WgsiemError(f"{full[0]} is not installed") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(input), timeout_secs)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise WgsiemError(f"{argv[0]} timed out") from None
        rc = proc.returncode if proc.returncode is not None else -1
        if check and rc:
            raise WgsiemError(f"{argv[0]} exited with {rc}")
        return CommandResult(tuple(argv), rc, out, err)

    async def read_file(self, path: str) -> bytes:
        return Path(path).read_bytes()

    async def write_file(self, path: str, data: bytes, *, mode: int) -> None:
        raise NotImplementedError


def local_executor(netns: str | None) -> Any:
    try:
        return importlib.import_module("wgsiem.respond.executors").LocalExecutor(netns)
    except (ImportError, AttributeError):
        return MinimalExecutor(netns)


@dataclass
class FakeExecutor:
    """Answers argv from a table: bytes (stdout, rc 0), an int (rc, no output) or an exception."""

    answers: dict[tuple[str, ...], Any]
    name: str = "fake"
    calls: list[tuple[str, ...]] = field(default_factory=list)

    async def run(
        self, argv: list[str], *, input: bytes | None = None, timeout_secs: float = 30.0, check: bool = True
    ) -> CommandResult:
        key = tuple(argv)
        self.calls.append(key)
        answer = self.answers.get(key, WgsiemError(f"{argv[0]} is not installed"))
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, int):
            return CommandResult(key, answer, b"", b"failed")
        if isinstance(answer, tuple):
            rc, out, err = answer
            return CommandResult(key, rc, out, err)
        return CommandResult(key, 0, answer, b"")

    async def read_file(self, path: str) -> bytes:
        raise NotImplementedError

    async def write_file(self, path: str, data: bytes, *, mode: int) -> None:
        raise NotImplementedError


def context(executor: Any, tmp: Path, **settings: Any) -> ActionContext:
    return ActionContext(
        executor=executor,
        dry_run=False,
        state_dir=tmp / "state",
        case_dir=tmp / "case",
        hostname="gw-test",
        settings=settings,
    )

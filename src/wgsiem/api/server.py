"""The local API of a running ``wgsiem run``: JSON over HTTP on a unix socket (mode 0600).

Why a socket and not the database file: DuckDB lets one process write a file and no other process open
it meanwhile, so read commands (``status``, ``peers``, ``sessions``, ``events``) ask the running process.
When nothing runs, they open the store read-only instead (see :mod:`wgsiem.api.client`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

__all__ = ["ApiServer", "Handler"]

Handler = Callable[[dict[str, str]], Awaitable[Any]]


class ApiServer:
    def __init__(self, socket_path: Path, handlers: dict[str, Handler]) -> None:
        self.socket_path = socket_path
        self.handlers = handlers
        self._runner: web.AppRunner | None = None

    async def _dispatch(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        handler = self.handlers.get(name)
        if handler is None:
            return web.Response(status=404, text=f"unknown endpoint {name}; have {sorted(self.handlers)}")
        try:
            body = await handler(dict(request.query))
        except (ValueError, KeyError) as exc:
            return web.Response(status=400, text=str(exc))
        return web.Response(body=orjson.dumps(body, default=str), content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/{name}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        old = os.umask(0o077)
        try:
            site = web.UnixSite(self._runner, str(self.socket_path))
            await site.start()
        finally:
            os.umask(old)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

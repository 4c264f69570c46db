"""A small webhook receiver for the tests, run as its own process (``python receiver.py …``).

Appends every event it receives, as one JSON line, to ``--out`` *before* answering 200 (so an event
the sender saw acknowledged is on disk). ``POST /_control`` with ``{"status": 503, "count": 3,
"retry_after": "1"}`` makes the next ``count`` requests fail with that status (0 = forever).
``{"delay": 0.05}`` slows every answer. ``--require-auth VALUE`` answers 401 unless the
``Authorization`` header is exactly VALUE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

from aiohttp import web


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ready", required=True, help="file created once listening")
    ap.add_argument("--require-auth")
    args = ap.parse_args()
    state: dict[str, Any] = {"status": 0, "count": 0, "retry_after": None, "delay": 0.0}
    out = open(args.out, "ab")  # noqa: SIM115 - open for the process's lifetime

    async def control(req: web.Request) -> web.Response:
        state.update(await req.json())
        return web.json_response(state)

    async def health(_req: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def ingest(req: web.Request) -> web.Response:
        if args.require_auth is not None and req.headers.get("Authorization") != args.require_auth:
            return web.json_response({"error": "unauthorized"}, status=401)
        if state["status"]:
            if state["count"] != 0:
                state["count"] -= 1
                if state["count"] == 0:
                    status, state["status"] = state["status"], 0
                else:
                    status = state["status"]
            else:
                status = state["status"]
            headers = {"Retry-After": state["retry_after"]} if state.get("retry_after") else None
            return web.json_response({"error": "scripted"}, status=status, headers=headers)
        body = await req.read()
        if state["delay"]:
            await asyncio.sleep(state["delay"])
        try:
            doc = json.loads(body)
        except ValueError:
            return web.json_response({"error": "not json"}, status=400)
        items = doc if isinstance(doc, list) else [doc]
        if any(isinstance(i, dict) and i.get("reject") for i in items):
            return web.json_response({"error": "rejected by test"}, status=422)
        out.write(b"".join(json.dumps(i).encode() + b"\n" for i in items))
        out.flush()
        os.fsync(out.fileno())
        return web.json_response({"accepted": len(items)})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/_control", control)
    app.router.add_route("HEAD", "/hook", health)
    app.router.add_route("GET", "/hook", health)
    app.router.add_post("/hook", ingest)
    app.router.add_put("/hook", ingest)

    async def on_startup(_app: web.Application) -> None:
        open(args.ready, "w").close()

    app.on_startup.append(on_startup)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, handle_signals=True)


if __name__ == "__main__":
    main()

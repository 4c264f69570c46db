"""Every audit record, also as an ECS event (dataset ``wireguard.respond``) into the pipeline.

The source tails the audit log rather than taking records from the engine's memory: approvals made
with the CLI in another process, undo requests and kill-switch changes reach the SIEM the same way
as the engine's own records, and the position (the last ``seq`` emitted) survives restarts, so a
record written while wgsiem was down is emitted at the next start. ``event.id`` derives from the
record's hash, so a re-emitted record is the same event.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

from wgsiem.event import Envelope, EventMeta, event_id

from .audit import read_records

__all__ = ["DATASET", "RespondEventsSource", "record_to_ecs"]

DATASET = "wireguard.respond"
_CHANGE_KINDS = ("action", "result", "undo")
_SKIP = ("seq", "time", "kind", "actor", "prev_hash", "hash", "event")


def _iso(seconds: float) -> str:
    return (
        dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def record_to_ecs(rec: dict[str, Any], hostname: str) -> dict[str, Any]:
    kind = str(rec.get("kind", ""))
    name = str(rec.get("event") or kind)
    doc: dict[str, Any] = {
        "@timestamp": _iso(float(rec.get("time", time.time()))),
        "event": {
            "id": event_id("wgsiem.respond", rec.get("hash", "")),
            "kind": "event",
            "category": ["configuration"],
            "type": ["change"] if kind in _CHANGE_KINDS else ["info"],
            "action": f"response-{name}",
            "dataset": DATASET,
            "module": "wireguard",
            "created": _iso(time.time()),
        },
        "observer": {"hostname": hostname, "type": "vpn", "vendor": "WireGuard", "product": "wgsiem"},
        "message": str(rec.get("summary") or rec.get("reason") or f"response {name}"),
    }
    if "ok" in rec:
        doc["event"]["outcome"] = "success" if rec["ok"] else "failure"
    elif name in ("denied", "expired", "allow-listed", "rate-limited", "kill-switch"):
        doc["event"]["outcome"] = "failure"
    if rec.get("rule_id"):
        doc["rule"] = {"id": str(rec["rule_id"])}
    related_ip: list[str] = []
    target = rec.get("target")
    tgt: dict[str, Any] = target if isinstance(target, dict) else {}
    if tgt.get("endpoint_ip"):
        related_ip.append(str(tgt["endpoint_ip"]))
    related: dict[str, Any] = {"user": [str(rec.get("actor", ""))]}
    if related_ip:
        related["ip"] = related_ip
    doc["related"] = related
    respond = {k: v for k, v in rec.items() if k not in _SKIP}
    respond["actor"] = rec.get("actor")
    respond["record"] = name
    respond["audit"] = {"seq": rec.get("seq"), "hash": rec.get("hash"), "kind": kind}
    doc["wireguard"] = {"respond": respond}
    return doc


class RespondEventsSource:
    """``<sink id>.events``: emits each new audit record as an ECS event."""

    component_type = "respond_events"

    def __init__(
        self, component_id: str, audit_path: Path, position_path: Path, hostname: str, wakeup: asyncio.Event
    ) -> None:
        self.component_id = component_id
        self.audit_path = audit_path
        self.position_path = position_path
        self.hostname = hostname
        self.wakeup = wakeup
        self.poll_interval_secs = 0.5
        self.emitted = 0
        self._offset = 0
        self._seq = self._load_position()

    def _load_position(self) -> int:
        try:
            return int(json.loads(self.position_path.read_text())["seq"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            # first start: begin after what is already in the log (history stays in the log itself)
            last = 0
            if self.audit_path.exists():
                for _n, rec, _raw in read_records(self.audit_path):
                    if rec is not None and isinstance(rec.get("seq"), int):
                        last = rec["seq"]
            return last

    def save_state(self) -> None:
        tmp = self.position_path.with_name(self.position_path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"seq": self._seq}, f)
        os.replace(tmp, self.position_path)

    def _new_records(self) -> list[dict[str, Any]]:
        """Complete records after the emitted position, read from the byte offset reached so far."""
        try:
            f = self.audit_path.open("rb")
        except FileNotFoundError:
            return []
        out = []
        with f:
            size = os.fstat(f.fileno()).st_size
            if size < self._offset:  # the log was replaced or truncated: rescan (verify reports it)
                self._offset = 0
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            self._offset += len(line) + 1
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("seq"), int) and rec["seq"] > self._seq:
                out.append(rec)
        return out

    async def run(self, emit: Any, stop: asyncio.Event) -> None:
        while True:
            recs = self._new_records()
            if recs:
                batch = [
                    Envelope(record_to_ecs(r, self.hostname), EventMeta(self.component_id, time.time_ns()))
                    for r in recs
                ]
                await emit(batch)
                self._seq = recs[-1]["seq"]
                self.emitted += len(batch)
                self.save_state()
            if stop.is_set():
                return
            self.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), self.poll_interval_secs)

    def status(self) -> dict[str, Any]:
        return {"emitted": self.emitted, "position_seq": self._seq}

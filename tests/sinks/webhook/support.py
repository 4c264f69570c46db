"""The test receiver as a managed subprocess (started, stopped, killed; always cleaned up)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

RECEIVER = Path(__file__).with_name("receiver.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    def __init__(self, tmp: Path, port: int | None = None, require_auth: str | None = None) -> None:
        self.tmp = tmp
        self.port = port or free_port()
        self.out = tmp / "received.ndjson"
        self.ready = tmp / "receiver.ready"
        self.log = tmp / "receiver.log"
        self.require_auth = require_auth
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        self.ready.unlink(missing_ok=True)
        cmd = [sys.executable, str(RECEIVER), "--port", str(self.port), "--out", str(self.out)]
        cmd += ["--ready", str(self.ready)]
        if self.require_auth:
            cmd += ["--require-auth", self.require_auth]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while not self._listening():
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "receiver did not start"
            time.sleep(0.02)

    def _listening(self) -> bool:
        if not self.ready.exists():
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def control(self, **state: Any) -> None:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/_control",
            data=json.dumps(state).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=5).read()

    def events(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.endswith("}")]

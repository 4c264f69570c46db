"""Test helpers: a real ``prometheus`` server in a temp dir, and small HTTP/promtool wrappers.

Every process started here is stopped in a ``finally`` (the fixture), also when the test fails.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``pred`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def http_get(
    url: str, *, auth: tuple[str, str] | None = None, timeout: float = 10.0, context: Any = None
) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if auth is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def promtool_check(exposition: bytes) -> subprocess.CompletedProcess[str]:
    """``promtool check metrics`` (the Prometheus project's naming lint) on an exposition."""
    return subprocess.run(
        [PROMTOOL, "check", "metrics"], input=exposition.decode(), capture_output=True, text=True, timeout=60
    )


class Prometheus:
    """A real Prometheus scraping one target every second, its TSDB in ``workdir``."""

    def __init__(
        self, workdir: Path, target_port: int, *, job: str = "wgsiem", scrape: dict[str, Any] | None = None
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.job = job
        cfg = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": job,
                    "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                    **(scrape or {}),
                }
            ],
        }
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(json.dumps(cfg))  # JSON is YAML
        self.log_path = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        wait_for(self._ready, 60, f"prometheus ready (log: {self.log_path})")

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"prometheus exited {self.proc.returncode}: {self.log_path.read_text()[-2000:]}"
            )
        try:
            return http_get(f"{self.base}/-/ready", timeout=2)[0] == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.base}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        status, body = http_get(url)
        data = json.loads(body)
        assert status == 200 and data["status"] == "success", (status, data)
        return data["data"]

    def target(self) -> dict[str, Any] | None:
        active = self.api("targets", state="active")["activeTargets"]
        return next((t for t in active if t["labels"].get("job") == self.job), None)

    def wait_up(self, timeout: float = 30) -> dict[str, Any]:
        return wait_for(
            lambda: (t := self.target()) is not None and t["health"] == "up" and t,
            timeout,
            "the target to be up",
        )

    def query(self, promql: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=promql)["result"])

    def value(self, promql: str) -> float | None:
        """The single value of an instant query (None when it has no result)."""
        res = self.query(promql)
        assert len(res) <= 1, res
        return float(res[0]["value"][1]) if res else None

    def series(self, match: str, since: float) -> list[dict[str, str]]:
        """Every series matching ``match`` that had a sample since ``since`` (TSDB view, not lookback)."""
        return list(
            self.api(
                "series", **{"match[]": match, "start": f"{since:.3f}", "end": f"{time.time() + 60:.3f}"}
            )
        )


def available() -> bool:
    return shutil.which(PROMETHEUS) is not None and shutil.which(PROMTOOL) is not None

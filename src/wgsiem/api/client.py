"""Client side of the local API, used by the read commands of the CLI."""

from __future__ import annotations

import http.client
import socket
from pathlib import Path
from typing import Any

import orjson

__all__ = ["ApiUnavailable", "api_get"]


class ApiUnavailable(Exception):
    """No ``wgsiem run`` answers on the socket."""


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def api_get(socket_path: Path, name: str, params: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
    from urllib.parse import urlencode

    if not socket_path.exists():
        raise ApiUnavailable(str(socket_path))
    conn = _UnixHTTPConnection(str(socket_path), timeout)
    query = f"?{urlencode({k: v for k, v in (params or {}).items() if v is not None})}" if params else ""
    try:
        conn.request("GET", f"/v1/{name}{query}")
        resp = conn.getresponse()
        body = resp.read()
    except (ConnectionRefusedError, FileNotFoundError) as exc:
        raise ApiUnavailable(str(socket_path)) from exc
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"API {name}: HTTP {resp.status}: {body.decode(errors='replace')}")
    return orjson.loads(body)

"""Splunk custom alert action ``wgsiem_propose``: ask wgsiem's respond API to propose a playbook.

This file is copied verbatim into the Splunk app as ``bin/wgsiem_propose.py`` and runs under Splunk's
own Python 3 with the standard library only (no wgsiem import). Splunk runs it as
``python3 wgsiem_propose.py --execute`` with a JSON payload on stdin (the custom alert action
contract: ``configuration`` holds the ``param.*`` settings, ``result`` the first result row,
``search_name`` and ``sid`` name the search) and logs its stderr to splunkd.log.

It sends ``POST {base_url}/api/v1/proposals`` with ``Authorization: Bearer <token>`` and
``{"playbook": <id or null>, "alert": <the result row>, "reason": <text>}``. Exit status: 0 sent,
2 bad payload/configuration, 3 the API refused or could not be reached. The token is never printed.
"""

from __future__ import annotations

import json
import ssl
import sys
import urllib.error
import urllib.request
from typing import Any

__all__ = ["build_request", "main"]

PATH = "/api/v1/proposals"


def build_request(payload: dict[str, Any]) -> urllib.request.Request:
    """The HTTP request for one Splunk alert payload; raises ``ValueError`` on a bad configuration."""
    conf = payload.get("configuration") or {}
    base = str(conf.get("base_url") or "").rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError("param.base_url must be the wgsiem API URL, e.g. https://wgsiem.example.net:8443")
    token = str(conf.get("token") or "")
    if not token:
        raise ValueError("param.token (the wgsiem API token) is not set")
    result = payload.get("result")
    alert = dict(result) if isinstance(result, dict) else {}
    search = payload.get("search_name") or "Splunk search"
    reason = (
        str(conf.get("reason") or "").strip() or f"Splunk alert: {search} (sid {payload.get('sid', '?')})"
    )
    playbook = str(conf.get("playbook") or "").strip() or None
    body = json.dumps({"playbook": playbook, "alert": alert, "reason": reason}).encode("utf-8")
    return urllib.request.Request(
        base + PATH,
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "User-Agent": "wgsiem-splunk-alert-action",
        },
    )


def _context(conf: dict[str, Any]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=conf.get("ca_file") or None)
    if str(conf.get("verify_tls", "1")).lower() in ("0", "false", "no"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def main(argv: list[str], stdin: Any = None, stderr: Any = None) -> int:
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    if len(argv) < 2 or argv[1] != "--execute":
        print("FATAL usage: wgsiem_propose.py --execute  (payload on stdin)", file=stderr)
        return 2
    try:
        payload = json.loads(stdin.read())
        if not isinstance(payload, dict):
            raise ValueError("payload is not a JSON object")
        request = build_request(payload)
    except ValueError as exc:
        print(f"ERROR wgsiem_propose: {exc}", file=stderr)
        return 2
    conf = payload.get("configuration") or {}
    timeout = float(conf.get("timeout_secs") or 10)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=_context(conf)) as resp:
            answer = resp.read(2000).decode("utf-8", "replace")
            print(f"INFO wgsiem_propose: proposal sent, HTTP {resp.status}: {answer}", file=stderr)
            return 0
    except urllib.error.HTTPError as exc:
        detail = exc.read(500).decode("utf-8", "replace")
        print(f"ERROR wgsiem_propose: {request.full_url} refused: HTTP {exc.code}: {detail}", file=stderr)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        print(f"ERROR wgsiem_propose: {request.full_url} unreachable: {exc}", file=stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv))

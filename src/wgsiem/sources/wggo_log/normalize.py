"""Pure mapping of one classified wireguard-go line to an ECS document.

Direction follows the ``wg_state`` convention: the **source** is the remote side (an endpoint a
message names — who sent the invalid initiation, whose cookie we answered), the observer is this
wireguard-go interface. Facts without an ECS home live under ``wireguard.*``:

* ``wireguard.peer``: ``abbreviation`` (``ABCD…wxyz`` as logged), ``resolution``
  (``resolved``/``ambiguous``/``unknown``), ``public_key`` when resolved, ``candidates`` when ambiguous;
* ``wireguard.handshake``: ``after_secs``, ``try``, ``attempts``, ``tai64n`` (as the kernel source);
* ``wireguard.routine`` (``name``, ``worker``), ``wireguard.interface`` (``name``, ``state``, ``mtu``),
  ``wireguard.daemon.version``, ``wireguard.log`` (``local_time`` as printed, ``interface_from``).

Key material never reaches a document: wireguard-go logs only the abbreviation of public keys, but a
rejected UAPI request may echo what it was sent (``IPC error -22: failed to parse line "…"``), so
every free-text part (error texts, unknown messages) has hex and base64 key-shaped runs replaced
by ``[redacted]``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from wgsiem import __version__
from wgsiem.sources.wggo_log.catalog import ACTIONS, DIRECTIONS, Classified

__all__ = ["DATASET", "ECS_VERSION", "PeerResolution", "iso", "redact", "to_ecs"]

DATASET = "wireguard.wggo_log"
ECS_VERSION = "9.5.0-dev"

_KEYLIKE = re.compile(
    r"(?<![0-9A-Za-z+/])(?:[0-9a-fA-F]{64}|[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)(?![0-9A-Za-z+/=])"
)

PeerResolution = tuple[str, str | None, tuple[str, ...], str | None]
"""(resolution, public key, candidates, endpoint known for the peer)."""

_HANDSHAKE_FIELDS = frozenset({"try", "attempts", "after_secs", "tai64n"})
_FREE_TEXT_ACTIONS = frozenset({"unrecognized", "uapi-error", "uapi-invalid-operation"})


def redact(text: str) -> str:
    """``text`` with every 32-byte key shape (64 hex digits, 44-char base64) replaced."""
    if len(text) < 44:
        return text
    return _KEYLIKE.sub("[redacted]", text)


_ISO_CACHE: dict[int, str] = {}


def iso(t: float) -> str:
    """Epoch seconds → RFC 3339 UTC with milliseconds, memoised per millisecond (log times repeat
    within a second and ``event.created`` within a batch)."""
    ms = int(t * 1000)
    s = _ISO_CACHE.get(ms)
    if s is None:
        if len(_ISO_CACHE) > 4096:
            _ISO_CACHE.clear()
        s = _ISO_CACHE[ms] = (
            datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        )
    return s


def split_endpoint(endpoint: str) -> tuple[str | None, int | None]:
    """``1.2.3.4:51820`` / ``[2001:db8::1]:51820`` → (ip, port); (None, None) when it is neither."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit():
        return None, None
    if host.startswith("["):
        host = host[1:-1] if host.endswith("]") else host[1:]
        host = host.split("%", 1)[0]
    elif ":" in host:
        return None, None
    if not host or not (":" in host or host.replace(".", "").isdigit()):
        return None, None
    return host, int(port)


def to_ecs(
    *,
    level: str,
    message: str,
    raw: str,
    local_time: str,
    classified: Classified,
    at: float,
    created: float,
    event_id: str,
    sequence: int,
    hostname: str,
    interface: str | None,
    interface_from: str | None,
    peer: PeerResolution | None,
    file_path: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the ECS document of one line. ``at`` is the event time, ``created`` when wgsiem saw it."""
    action = classified.action
    category, etype, outcome, _ = ACTIONS[action]
    if action in _FREE_TEXT_ACTIONS or any(name == "error" for name, _ in classified.fields):
        message, raw = redact(message), redact(raw)
    event: dict[str, Any] = {
        "id": event_id,
        "kind": "event",
        "category": category,
        "type": etype,
        "action": action,
        "dataset": DATASET,
        "module": "wireguard",
        "created": iso(created),
        "sequence": sequence,
        "original": raw,
    }
    if outcome:
        event["outcome"] = outcome
    observer: dict[str, Any] = {
        "hostname": hostname,
        "type": "vpn",
        "vendor": "WireGuard",
        "product": "wireguard-go",
    }
    log: dict[str, Any] = {"level": level}
    if file_path:
        log["file"] = {"path": file_path}
    wg: dict[str, Any] = {"log": {"local_time": local_time}}
    if interface:
        observer["ingress"] = {"interface": {"name": interface}}
        wg["interface"] = {"name": interface}
        wg["log"]["interface_from"] = interface_from
    doc: dict[str, Any] = {
        "@timestamp": iso(at),
        "ecs": {"version": ECS_VERSION},
        "event": event,
        "agent": {"type": "wgsiem", "version": __version__},
        "observer": observer,
        "log": log,
        "message": message,
        "network": {"transport": "udp", "protocol": "wireguard"},
        "wireguard": wg,
    }
    direction = DIRECTIONS.get(action)
    if direction:
        doc["network"]["direction"] = direction
    if classified.head is not None and classified.tail is not None:
        p: dict[str, Any] = {"abbreviation": f"{classified.head}…{classified.tail}"}
        if peer is not None:
            resolution, key, candidates, endpoint = peer
            p["resolution"] = resolution
            if key:
                p["public_key"] = key
            if candidates:
                p["candidates"] = list(candidates)
            if endpoint:
                p["endpoint"] = endpoint
        wg["peer"] = p
    for name, value in classified.fields:
        if name == "endpoint":
            wg["endpoint"] = {"text": value}  # the kernel_log shape: one mapping for wireguard.endpoint
            ip, port = split_endpoint(value)
            if ip is not None:
                doc["source"] = {"ip": ip, "address": ip, "port": port}
                doc["network"]["type"] = "ipv6" if ":" in ip else "ipv4"
                doc["related"] = {"ip": [ip]}
        elif name in _HANDSHAKE_FIELDS:
            wg.setdefault("handshake", {})[name] = value
        elif name == "error":
            doc.setdefault("error", {})["message"] = redact(value)
        elif name == "code":
            doc.setdefault("error", {})["code"] = value
        elif name == "routine":
            wg.setdefault("routine", {})["name"] = value
        elif name == "worker":
            wg.setdefault("routine", {})["worker"] = value
        elif name.startswith("state_"):
            wg.setdefault("interface", {}).setdefault("state", {})[name[6:]] = value
        elif name == "mtu":
            wg.setdefault("interface", {})["mtu"] = value
        elif name == "mtu_note":
            if value.strip():
                wg.setdefault("interface", {})["mtu_note"] = value.strip(" ()")
        elif name == "version":
            wg["daemon"] = {"version": value}
        elif name == "ip_version":
            doc["network"]["type"] = f"ipv{value}"
        elif name == "direction":
            doc["network"]["direction"] = value
        elif name == "bind_try":
            wg["bind"] = {"try": value}
        elif name == "receiver":
            wg["receiver"] = value
        else:  # pragma: no cover - every catalogue field is mapped above
            wg.setdefault("fields", {})[name] = value
    if extra:
        for k, v in extra.items():
            doc.setdefault(k, {}).update(v)
    return doc

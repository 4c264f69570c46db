"""Friendly peer names from the comment conventions of the tools that write WireGuard configs.

``wg`` discards comments, so every management tool invented its own way to say whose peer a block is
(see shared/reference/formats/05_config_format.md §C). A peer's comments come in three places: the
run of comment lines directly *before* its ``[Peer]`` header, the comments *inside* its block, and a
*wrapper* opened before it (``# BEGIN_PEER x`` … ``# END_PEER x``). Each convention has a priority;
the most specific one wins and its name is reported with ``name_source`` so an analyst knows where it
came from. Other metadata those tools write (ids, email, ``friendly_json``) becomes labels.

A comment can hold a commented-out key (``# PresharedKey = …``): any text that contains something
shaped like a WireGuard key is never taken as a name or label.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = ["KEY_SHAPE", "PeerComments", "Wrapper", "peer_name", "wrapper_event"]

KEY_SHAPE = re.compile(r"[A-Za-z0-9+/]{43}=")
MAX_NAME = 128

_INSIDE = [  # (regex on the comment text after '#', source)
    (re.compile(r"^\s*-WGP-\s*Display name:\s*(.+?)\s*$", re.I), "wg-portal"),
    (re.compile(r"^\s*friendly_name\s*=\s*(.+?)\s*$"), "prometheus_wireguard_exporter"),
    (re.compile(r"^\+\s*Name\s*=\s*(.+?)\s*$", re.I), "wg-meta"),
]
_BEFORE = [
    (re.compile(r"^\s*Client:\s*(.+?)\s*$"), "wg-easy"),
    (re.compile(r"^##\s*Client\s+(.+?)\s*$"), "angristan/wireguard-install"),
    (re.compile(r"^\s*Name:\s*(.+?)\s*$"), "wireguard-ui"),
]
_GENERIC = re.compile(r"^\+?\s*(?:name|friendly_name|client)\s*[:=]\s*(.+?)\s*$", re.I)
_LABELS = [
    (re.compile(r"^\s*-WGP-\s*Peer:\s*(.+?)\s*$", re.I), "wg_portal_id"),
    (re.compile(r"^\s*ID:\s*(.+?)\s*$"), "id"),
    (re.compile(r"^\s*Email:\s*(.+?)\s*$"), "email"),
    (re.compile(r"^\s*Telegram:\s*(.+?)\s*$"), "telegram"),
    (re.compile(r"^\+\s*Alias\s*=\s*(.+?)\s*$", re.I), "alias"),
]
_FRIENDLY_JSON = re.compile(r"^\s*friendly_json\s*=\s*(\{.*\})\s*$")
_WG_EASY_ID = re.compile(r"^(.*?)\s*\(([^()]*)\)$")
_WRAP_OPEN = [
    (re.compile(r"^\s*BEGIN_PEER\s+(.+?)\s*$"), "Nyr/wireguard-install"),
    (re.compile(r"^##\s*begin\s+(.+?)\s*###\s*$"), "pivpn"),
    (re.compile(r"^\s*peer-(.+?)\s+START\s*$"), "jacklul/wg-peers"),
]
_WRAP_CLOSE = [
    re.compile(r"^\s*END_PEER\s+(.+?)\s*$"),
    re.compile(r"^##\s*end\s+(.+?)\s*###\s*$"),
    re.compile(r"^\s*peer-(.+?)\s+END\s*$"),
]


@dataclass(frozen=True, slots=True)
class Wrapper:
    name: str
    source: str


@dataclass(slots=True)
class PeerComments:
    """Comment texts (without the leading ``#``) around one peer."""

    before: list[str]
    inside: list[str]
    first_inside: str | None  # the line right after ``[Peer]``, when it is a comment
    wrapper: Wrapper | None


def _clean(value: str) -> str | None:
    value = value.strip()
    if not value or len(value) > MAX_NAME or KEY_SHAPE.search(value):
        return None
    return value


def wrapper_event(text: str) -> tuple[str, Wrapper | None] | None:
    """``("open", Wrapper)`` / ``("close", None)`` if the comment opens or closes a wrapper."""
    if "PEER" not in text and "##" not in text and "peer-" not in text:
        return None
    for rx, source in _WRAP_OPEN:
        m = rx.match(text)
        if m and (name := _clean(m.group(1))):
            return "open", Wrapper(name, source)
    for rx in _WRAP_CLOSE:
        if rx.match(text):
            return "close", None
    return None


def _labels(texts: list[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for t in texts:
        m = _FRIENDLY_JSON.match(t)
        if m:
            try:
                obj = json.loads(m.group(1))
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                for k, v in obj.items():
                    if isinstance(v, str | int | float | bool) and (val := _clean(str(v))) and _clean(k):
                        out.append((str(k), val))
            continue
        for rx, label in _LABELS:
            m = rx.match(t)
            if m and (val := _clean(m.group(1))):
                out.append((label, val))
                break
    return out


def peer_name(c: PeerComments) -> tuple[str | None, str | None, list[tuple[str, str]]]:
    """(name, name_source, labels) for one peer; the most specific convention wins."""
    labels = _labels(c.before) + _labels(c.inside)
    for texts, rules in ((c.inside, _INSIDE), (c.before, _BEFORE)):
        for rx, source in rules:
            for t in texts:
                m = rx.match(t)
                if m and (name := _clean(m.group(1))):
                    if source == "wg-easy":
                        idm = _WG_EASY_ID.match(name)
                        if idm and idm.group(1):
                            name = idm.group(1)
                            if idv := _clean(idm.group(2)):
                                labels.append(("wg_easy_id", idv))
                    return name, source, labels
    if c.wrapper is not None:
        return c.wrapper.name, c.wrapper.source, labels
    for t in (*c.inside, *c.before):
        m = _GENERIC.match(t)
        if m and (name := _clean(m.group(1))):
            return name, "comment", labels
    if c.first_inside is not None and "=" not in c.first_inside and ":" not in c.first_inside:
        bare = _clean(c.first_inside.lstrip("#"))
        if bare:
            return bare, "comment", labels
    return None, None, labels

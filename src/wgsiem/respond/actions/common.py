"""What the containment and revocation actions share: reading the live interface, nftables I/O, editing
one peer's section of a WireGuard config file without touching anything else, and private backups.

The config-file functions are pure (bytes in, bytes out) so the rule "comments and other peers stay
byte-identical" is tested exactly, without WireGuard.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from wgsiem.errors import ConfigError, WgsiemError
from wgsiem.private_file import write_private
from wgsiem.respond.actions.base import ActionContext, Executor

__all__ = [
    "MAX_TTL_SECS",
    "ActionError",
    "LiveInterface",
    "LivePeer",
    "config_path",
    "drop_element",
    "element_present",
    "file_mode",
    "find_peer_spans",
    "ip_version",
    "list_table",
    "listen_ports",
    "live_interface",
    "load_private_json",
    "nft_apply",
    "nft_json",
    "nft_table",
    "parse_dump",
    "peer_values",
    "peers_at",
    "refresh_element",
    "remove_set_element",
    "remove_spans",
    "replace_peer_key",
    "require_key",
    "rule_comments",
    "save_private",
    "set_elements",
    "sha256",
    "table_sets",
    "ttl_param",
]

KEY_RE = re.compile(r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")


class ActionError(WgsiemError):
    """An action could not plan, apply, verify or undo its change."""


def require_key(value: Any, what: str = "peer public key") -> str:
    """A well-formed base64 WireGuard key, or a ConfigError that does not echo the value."""
    if not isinstance(value, str) or not KEY_RE.fullmatch(value):
        raise ConfigError(f"{what} is missing or not a base64 WireGuard key", fix="pass the 44-character key")
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ConfigError(f"{what} is not valid base64", fix="pass the 44-character key") from None
    return value


def ip_version(value: Any) -> int:
    try:
        return ipaddress.ip_address(str(value)).version
    except ValueError:
        raise ConfigError(f"{value!r} is not an IP address", fix="pass an IPv4 or IPv6 address") from None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the live interface -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LivePeer:
    """One peer as ``wg show <if> dump`` reports it; the preshared key itself is not kept here."""

    public_key: str
    has_psk: bool
    endpoint: str | None
    allowed_ips: tuple[str, ...]
    latest_handshake: int
    persistent_keepalive: int | None


@dataclass(frozen=True, slots=True)
class LiveInterface:
    public_key: str
    listen_port: int | None
    peers: dict[str, LivePeer]
    psks: dict[str, str]
    """Preshared keys by peer (secret: kept only in memory, written only to 0600 backups)."""

    def __repr__(self) -> str:  # never print the PSKs
        return f"LiveInterface(public_key={self.public_key!r}, peers={len(self.peers)})"


def parse_dump(text: str, interface: str) -> LiveInterface:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ActionError(f"`wg show {interface} dump` printed nothing", fix="is the interface up?")
    head = lines[0].split("\t")
    if len(head) != 4:
        raise ActionError(
            f"`wg show {interface} dump`: unexpected interface line", fix="check wireguard-tools"
        )
    port = int(head[2]) if head[2].isdigit() and head[2] != "0" else None
    peers: dict[str, LivePeer] = {}
    psks: dict[str, str] = {}
    for n, line in enumerate(lines[1:], start=2):
        f = line.split("\t")
        if len(f) != 8:
            raise ActionError(
                f"`wg show {interface} dump`: unexpected peer line {n}", fix="check wireguard-tools"
            )
        key, psk, endpoint, allowed, hs, _rx, _tx, ka = f
        if psk != "(none)":
            psks[key] = psk
        peers[key] = LivePeer(
            public_key=key,
            has_psk=psk != "(none)",
            endpoint=None if endpoint == "(none)" else endpoint,
            allowed_ips=() if allowed == "(none)" else tuple(allowed.split(",")),
            latest_handshake=int(hs) if hs.isdigit() else 0,
            persistent_keepalive=None if ka in ("off", "0") or not ka.isdigit() else int(ka),
        )
    return LiveInterface(head[1], port, peers, psks)


async def live_interface(executor: Executor, interface: str) -> LiveInterface:
    """The interface as it runs now. ``dump`` prints secrets: its output is parsed and dropped."""
    res = await executor.run(["wg", "show", interface, "dump"], timeout_secs=15.0)
    return parse_dump(res.stdout.decode("utf-8", "replace"), interface)


# -- files ------------------------------------------------------------------------------------------


def config_path(ctx: ActionContext, interface: str) -> str | None:
    files = ctx.settings.get("config_files") or {}
    path = files.get(interface)
    return str(path) if path else None


async def file_mode(executor: Executor, path: str, default: int = 0o600) -> int:
    """The file's permission bits via the executor's optional ``file_mode``; 0600 (safe for a file
    holding a private key) when the executor cannot tell."""
    getter = getattr(executor, "file_mode", None)
    if getter is None:
        return default
    mode = await getter(path)
    return default if mode is None else int(mode)


def save_private(ctx: ActionContext, kind: str, name: str, data: bytes) -> Path:
    """Write ``data`` to ``<state_dir>/backups/<name>-<time>-<rand>.<kind>``, 0600 in a 0700 directory."""
    safe = re.sub(r"[^A-Za-z0-9_.=+-]", "_", name)[:40]
    path = (
        ctx.state_dir / "backups" / f"{safe}-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}.{kind}"
    )
    try:
        write_private(path, data)
        os.chmod(path.parent, 0o700)
    except OSError as exc:
        raise ActionError(
            f"cannot keep a backup in {path.parent}: {exc.strerror}", fix="the state dir must be writable"
        ) from None
    return path


def load_private_json(path: str) -> dict[str, Any]:
    try:
        obj = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        raise ActionError(
            f"backup {path} is missing or unreadable", fix="restore it from the state dir"
        ) from None
    if not isinstance(obj, dict):
        raise ActionError(f"backup {path} is not a JSON object", fix="restore it from the state dir")
    return obj


# -- nftables -------------------------------------------------------------------------------------


async def nft_json(executor: Executor, *args: str) -> list[dict[str, Any]]:
    """``nft -j <args>`` → the list under ``nftables`` (metainfo removed)."""
    res = await executor.run(["nft", "-j", *args], timeout_secs=15.0)
    try:
        obj = orjson.loads(res.stdout or b"{}")
    except orjson.JSONDecodeError:
        raise ActionError(
            f"`nft -j {' '.join(args)}` printed no JSON", fix="is nftables >= 0.9 installed?"
        ) from None
    return [o for o in obj.get("nftables", []) if isinstance(o, dict) and "metainfo" not in o]


async def nft_apply(executor: Executor, script: str) -> None:
    """One ``nft -f -`` transaction: all of ``script`` or nothing."""
    await executor.run(["nft", "-f", "-"], input=script.encode(), timeout_secs=15.0)


def set_elements(objs: list[dict[str, Any]]) -> dict[str, int | None]:
    """Elements of the set in a ``nft -j list set`` answer → seconds until expiry (None: no timeout)."""
    out: dict[str, int | None] = {}
    for o in objs:
        for e in (o.get("set") or {}).get("elem", []) or []:
            if isinstance(e, dict) and isinstance(e.get("elem"), dict):
                val, exp = e["elem"].get("val"), e["elem"].get("expires")
                out[str(val)] = int(exp) if exp is not None else None
            else:
                out[str(e)] = None
    return out


# -- config files: one peer's section, exactly -----------------------------------------------------

_CLOSE_MARKER = re.compile(r"^\s*#\s*(?:END_PEER\s+\S.*|##\s*end\s+.+?###|peer-\S+\s+END)\s*$", re.IGNORECASE)


def _clean(line: bytes) -> bytes:
    """A line as ``wg`` reads it: comment removed, every whitespace removed."""
    return re.sub(rb"\s+", b"", line.split(b"#", 1)[0])


def _is_header(line: bytes) -> bool:
    return _clean(line).startswith(b"[")


def _is_comment(line: bytes) -> bool:
    return line.lstrip().startswith(b"#")


def _is_blank(line: bytes) -> bool:
    return not line.strip()


def _value(line: bytes, key: bytes) -> bytes | None:
    c = _clean(line)
    if c.lower().startswith(key + b"="):
        return c[len(key) + 1 :]
    return None


def _peer_blocks(lines: list[bytes]) -> list[tuple[int, int]]:
    """(header index, end index exclusive) of every ``[Peer]``/``[WireGuardPeer]`` section."""
    headers = [i for i, ln in enumerate(lines) if _is_header(ln)]
    out = []
    for n, h in enumerate(headers):
        if _clean(lines[h]).lower() in (b"[peer]", b"[wireguardpeer]"):
            out.append((h, headers[n + 1] if n + 1 < len(headers) else len(lines)))
    return out


def find_peer_spans(data: bytes, public_key: str) -> list[tuple[int, int]]:
    """Byte ranges of the peer's section(s), with the comments that belong to it.

    A section runs from its header to the last key line before the next header, plus a closing
    wrapper comment (``# END_PEER x``, ``### end x ###``, ``# peer-x END``) right after it. The comment
    lines directly above the header (no blank line between: wg-easy's ``# Client:``, angristan's
    ``### Client``, wireguard-ui's block, ``# BEGIN_PEER``) are the peer's too, unless one of them closes
    the previous peer's wrapper. Other comments — trailing ones that introduce the next peer, or a
    disabled peer's ``#[disabled]`` lines — are not.
    """
    lines = data.splitlines(keepends=True)
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln))
    spans = []
    key = public_key.encode()
    for h, end in _peer_blocks(lines):
        if not any(_value(ln, b"publickey") == key for ln in lines[h + 1 : end]):
            continue
        last = h
        for i in range(h + 1, end):
            if not _is_comment(lines[i]) and not _is_blank(lines[i]):
                last = i
        stop = last + 1
        for i in range(last + 1, end):  # inside comments right after the last key, up to a close marker
            if _is_blank(lines[i]):
                break
            if _CLOSE_MARKER.match(lines[i].decode("utf-8", "replace")):
                stop = i + 1
                break
        start = h
        while start > 0 and _is_comment(lines[start - 1]):
            if _CLOSE_MARKER.match(lines[start - 1].decode("utf-8", "replace")):
                break
            start -= 1
        # one separating blank line goes with the section, so the layout stays as it was
        if stop < len(lines) and _is_blank(lines[stop]) and (start == 0 or _is_blank(lines[start - 1])):
            stop += 1
        elif stop == len(lines) and start > 0 and _is_blank(lines[start - 1]):
            start -= 1
        spans.append((offsets[start], offsets[stop]))
    return spans


def remove_spans(data: bytes, spans: list[tuple[int, int]]) -> bytes:
    out, pos = [], 0
    for a, b in sorted(spans):
        out.append(data[pos:a])
        pos = b
    out.append(data[pos:])
    return b"".join(out)


def peer_values(section: bytes) -> dict[str, str]:
    """``{publickey, presharedkey, ...}`` (lower-case keys, last wins) of one section's key lines."""
    out: dict[str, str] = {}
    for ln in section.splitlines():
        c = _clean(ln)
        if b"=" in c and not c.startswith(b"["):
            k, _, v = c.partition(b"=")
            out[k.lower().decode("ascii", "replace")] = v.decode("ascii", "replace")
    return out


def replace_peer_key(data: bytes, old_key: str, new_key: str, new_psk: str | None) -> bytes:
    """The file with the peer's ``PublicKey`` value swapped in place (and, when ``new_psk`` is given, its
    ``PresharedKey`` value swapped, or a ``PresharedKey`` line added after ``PublicKey``). Every other
    byte — the line's spacing, its comment, the other peers — stays as it was."""
    lines = data.splitlines(keepends=True)
    old = old_key.encode()
    blocks = [
        (h, e)
        for h, e in _peer_blocks(lines)
        if any(_value(ln, b"publickey") == old for ln in lines[h + 1 : e])
    ]
    if not blocks:
        raise ActionError(
            "the peer has no section in the config file", fix="is config_files[interface] right?"
        )
    for h, end in reversed(blocks):  # from the end, so an inserted line shifts nothing still to do
        psk_done = new_psk is None
        pk_line = h
        for i in range(h + 1, end):
            if _value(lines[i], b"publickey") == old:
                lines[i] = lines[i].replace(old, new_key.encode(), 1)
                pk_line = i
            elif new_psk is not None and (psk := _value(lines[i], b"presharedkey")):
                lines[i] = lines[i].replace(psk, new_psk.encode(), 1)
                psk_done = True
        if not psk_done and new_psk is not None:
            eol = b"\r\n" if lines[pk_line].endswith(b"\r\n") else b"\n"
            if not lines[pk_line].endswith(b"\n"):
                lines[pk_line] += eol
            lines.insert(pk_line + 1, b"PresharedKey = " + new_psk.encode() + eol)
    return b"".join(lines)


# -- shared by the nftables actions ----------------------------------------------------------------

MAX_TTL_SECS = 7 * 24 * 3600


def nft_table(ctx: ActionContext) -> str:
    table = str(ctx.settings.get("nft_table", "wgsiem"))
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,30}", table):
        raise ConfigError(f"nft_table {table!r} is not a plain nftables name", fix="use letters, digits, _")
    return table


def ttl_param(params: dict[str, Any], default: int = 900) -> int:
    ttl = params.get("ttl_secs", default)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_TTL_SECS:
        raise ConfigError(
            f"ttl_secs must be a whole number of seconds from 1 to {MAX_TTL_SECS}", fix="e.g. ttl_secs: 900"
        )
    return ttl


def ports_param(value: Any) -> list[int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in value)
    ):
        raise ConfigError("listen_ports must be a list of UDP ports", fix="e.g. listen_ports: [51820]")
    return sorted(set(value))


async def listen_ports(ctx: ActionContext, interface: str | None, params: dict[str, Any]) -> list[int]:
    """The WireGuard ports to guard: the action's ``listen_ports``, the deployment's, or what the
    target interface listens on (``wg show <if> listen-port``)."""
    ports = ports_param(params.get("listen_ports")) or ports_param(ctx.settings.get("listen_ports"))
    if ports:
        return ports
    if interface:
        res = await ctx.executor.run(["wg", "show", interface, "listen-port"], timeout_secs=15.0)
        text = res.stdout.decode().strip()
        if text.isdigit() and text != "0":
            return [int(text)]
    raise ActionError(
        "no WireGuard listen port to protect",
        fix="give the alert's interface, or set listen_ports in the action or the respond settings",
    )


def element_present(elements: dict[str, int | None], address: str) -> int | None:
    """Seconds left for ``address`` in a set listing (-1 when it has no timeout), None when absent."""
    want = ipaddress.ip_address(address)
    for val, exp in elements.items():
        try:
            if ipaddress.ip_address(val) == want:
                return -1 if exp is None else exp
        except ValueError:
            continue
    return None


def refresh_element(table: str, set_name: str, address: str, ttl_secs: int) -> str:
    """nft lines that leave ``address`` in the set with a fresh ``ttl_secs``, whether or not it was
    there: add (no-op when present), delete, add with the timeout — one transaction, so idempotent."""
    el = f"add element inet {table} {set_name} {{ {address} }}\n"
    return (
        el
        + el.replace("add", "delete", 1)
        + (f"add element inet {table} {set_name} {{ {address} timeout {ttl_secs}s }}\n")
    )


def drop_element(table: str, set_name: str, address: str) -> str:
    """nft lines that leave ``address`` out of the set, whether or not it was there."""
    el = f"element inet {table} {set_name} {{ {address} }}\n"
    return f"add {el}delete {el}"


async def remove_set_element(executor: Executor, table: str, set_name: str, address: str) -> bool:
    """Take ``address`` out of the set (idempotent) and read it back: True when it is gone."""
    objs = await list_table(executor, table)
    if set_name in table_sets(objs):
        await nft_apply(executor, drop_element(table, set_name, address))
        objs = await list_table(executor, table)
    return element_present(table_sets(objs).get(set_name, {}), address) is None


def rule_comments(objs: list[dict[str, Any]], chain: str) -> set[str]:
    return {
        str(o["rule"].get("comment"))
        for o in objs
        if isinstance(o.get("rule"), dict) and o["rule"].get("chain") == chain
    }


def table_sets(objs: list[dict[str, Any]]) -> dict[str, dict[str, int | None]]:
    """Set name → elements, from ``nft -j list table`` output."""
    return {str(o["set"]["name"]): set_elements([o]) for o in objs if isinstance(o.get("set"), dict)}


async def list_table(executor: Executor, table: str) -> list[dict[str, Any]]:
    """``nft -j list table inet <table>``; an absent table lists as nothing."""
    res = await executor.run(["nft", "-j", "list", "table", "inet", table], timeout_secs=15.0, check=False)
    if res.returncode != 0:
        return []
    try:
        obj = orjson.loads(res.stdout or b"{}")
    except orjson.JSONDecodeError:
        raise ActionError(
            "`nft -j list table` printed no JSON", fix="is nftables >= 0.9 installed?"
        ) from None
    return [o for o in obj.get("nftables", []) if isinstance(o, dict) and "metainfo" not in o]


async def peers_at(ctx: ActionContext, interface: str | None, address: str) -> tuple[str, ...]:
    """Public keys of the interface's peers whose current endpoint is ``address`` (for the plan)."""
    if not interface:
        return ()
    try:
        live = await live_interface(ctx.executor, interface)
    except WgsiemError:
        return ()
    want = ipaddress.ip_address(address)
    out = []
    for p in live.peers.values():
        if p.endpoint:
            host = p.endpoint.rpartition(":")[0].strip("[]")
            try:
                if ipaddress.ip_address(host) == want:
                    out.append(p.public_key)
            except ValueError:
                continue
    return tuple(sorted(out))

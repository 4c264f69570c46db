"""Pure parser of WireGuard configuration files: ``wg setconf`` syntax, wg-quick's extra keys, and the
systemd-networkd section names — text in, a :class:`ParsedConfig` out, never an exception.

Rules follow wireguard-tools (shared/reference/formats/05_config_format.md):

* ``#`` starts a comment anywhere on a line, and all whitespace inside a line is insignificant
  (``config.c`` removes it before matching) — except wg-quick's hooks (``PreUp``/``PostUp``/``PreDown``/
  ``PostDown``), whose value is the raw text after ``=``, ``#`` included, as ``wg-quick`` reads it;
* section headers and keys are case-insensitive; ``[WireGuard]``/``[WireGuardPeer]`` (networkd) are
  aliases of ``[Interface]``/``[Peer]``;
* ``AllowedIPs``, ``Address``, ``DNS`` and the hooks may repeat and accumulate; other keys: last wins;
  ``AllowedIPs`` items may carry ``+``/``-`` (add/remove) prefixes;
* two blocks with the same ``PublicKey`` describe one peer (``wg`` merges them).

Where ``wg`` would refuse the whole file, this parser refuses only the bad line: it becomes a
:class:`~wgsiem.errors.ParseError` at ``file:line`` and everything else is still used, so one typo
does not hide the rest of a 10,000-peer file. Error messages name the key, never a value, because a
value may be a key.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass, field

from wgsiem.errors import Location, ParseError
from wgsiem.sources.config_watch.names import KEY_SHAPE, PeerComments, Wrapper, peer_name, wrapper_event
from wgsiem.sources.config_watch.records import ConfigInterface, ConfigPeer, ParsedConfig
from wgsiem.sources.wg_state.records import Fingerprinter

__all__ = ["parse_config", "public_key_of", "redact_keys"]

_INTERFACE_SECTIONS = {"[interface]": "wg", "[wireguard]": "networkd"}
_PEER_SECTIONS = {"[peer]": "wg", "[wireguardpeer]": "networkd"}
_IGNORED_SECTIONS = {"[netdev]", "[match]"}  # networkd .netdev sections without WireGuard keys
_HOOKS = {"preup": "PreUp", "postup": "PostUp", "predown": "PreDown", "postdown": "PostDown"}
_WG_QUICK = {"address", "dns", "mtu", "table", "saveconfig", *_HOOKS}
_EXTRA_INTERFACE = {
    # AmneziaWG (wg-easy awg) obfuscation parameters
    "jc": "Jc",
    "jmin": "Jmin",
    "jmax": "Jmax",
    **{f"s{i}": f"S{i}" for i in range(1, 5)},
    **{f"h{i}": f"H{i}" for i in range(1, 5)},
    **{f"i{i}": f"I{i}" for i in range(1, 6)},
    # systemd-networkd
    "privatekeyfile": "PrivateKeyFile",
    "firewallmark": "FirewallMark",
    "routetable": "RouteTable",
    "routemetric": "RouteMetric",
}
_EXTRA_PEER = {
    "presharedkeyfile": "PresharedKeyFile",
    "routetable": "RouteTable",
    "routemetric": "RouteMetric",
}
_KEY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+.-]{0,31}$")


def public_key_of(raw_private: bytes) -> str:
    """The base64 public key of a raw X25519 private key (what ``wg pubkey`` prints)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pk = X25519PrivateKey.from_private_bytes(raw_private)
    return base64.b64encode(pk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def redact_keys(text: str, fp: Fingerprinter) -> str:
    """Replace anything shaped like a WireGuard key (e.g. in a hook command) by its fingerprint."""
    return KEY_SHAPE.sub(lambda m: f"<key:{fp.of_b64(m.group(0))}>", text)


def _key32(value: str) -> bytes | None:
    if len(value) != 44:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


_CAPTURED = re.compile(r"fp:([0-9a-f]{16})(?:/([A-Za-z0-9+/]{43}=))?")


def _captured(value: str) -> tuple[str, str | None] | None:
    """``fp:<fingerprint>[/<public key>]``: a key ``wgsiem record`` replaced by its keyed fingerprint
    (and, for a private key, the public key it derived) → (fingerprint, public key)."""
    m = _CAPTURED.fullmatch(value)
    return (m.group(1), m.group(2)) if m else None


def _port(value: str, lo: int = 0) -> int:
    n = int(value, 10)
    if not lo <= n <= 65535:
        raise ValueError
    return n


_V4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:/(\d{1,2}))?")


def _network(item: str) -> str:
    """``ip[/cidr]`` → the network with host bits cleared (what the kernel stores); IPv4 fast path."""
    m = _V4.fullmatch(item)
    if m is not None:
        a, b, c, d, plen_s = m.groups()
        octets = (int(a), int(b), int(c), int(d))
        plen = 32 if plen_s is None else int(plen_s)
        if max(octets) > 255 or plen > 32 or any(len(x) > 1 and x[0] == "0" for x in (a, b, c, d)):
            raise ValueError
        n = (octets[0] << 24 | octets[1] << 16 | octets[2] << 8 | octets[3]) & (0xFFFFFFFF << (32 - plen))
        return f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}/{plen}"
    return str(ipaddress.ip_network(item, strict=False))


def _endpoint(value: str) -> str:
    if value.startswith("["):
        close = value.find("]")
        if close < 0 or value[close + 1 : close + 2] != ":":
            raise ValueError
        host, port = value[1:close], value[close + 2 :]
        ip = ipaddress.ip_address(host.split("%", 1)[0])  # v6 literal required inside brackets
        _port(port)
        zone = "%" + host.split("%", 1)[1] if "%" in host else ""
        return f"[{ip.compressed}{zone}]:{port}"
    host, sep, port = value.rpartition(":")
    if not sep or not host or ":" in host:
        raise ValueError
    _port(port)
    try:
        return f"{ipaddress.ip_address(host).compressed}:{port}"
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", host):
            raise
        return f"{host}:{port}"


@dataclass(slots=True)
class _Peer:
    line: int
    comments: PeerComments
    public_key: str | None = None
    psk_fp: str | None = None
    psk_present: bool = False
    allowed: list[str] = field(default_factory=list)
    endpoint: str | None = None
    keepalive: int | None = None
    last_key_line: int = 0
    inside: list[tuple[int, str]] = field(default_factory=list)


@dataclass(slots=True)
class _Iface:
    line: int = 0
    priv_fp: str | None = None
    pub: str | None = None
    listen_port: int | None = None
    fwmark: int | None = None
    addresses: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    mtu: int | None = None
    table: str | None = None
    save_config: bool | None = None
    hooks: list[tuple[str, str]] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)


class _Parser:
    def __init__(self, file: str, fp: Fingerprinter) -> None:
        self.file = file
        self.fp = fp
        self.errors: list[ParseError] = []
        self.iface: _Iface | None = None
        self.peers: dict[str, ConfigPeer] = {}
        self.peer: _Peer | None = None
        self.section: str | None = None  # "interface" | "peer" | "other" | None
        self.dialect = "wg"
        self.pending: list[tuple[int, str]] = []  # comment-only lines since the last other line
        self.wrapper: Wrapper | None = None

    def error(self, lineno: int, what: str, fix: str | None = None) -> None:
        self.errors.append(ParseError(what, location=Location(self.file, lineno), fix=fix))

    # ---------------------------------------------------------------- structure
    def finish_peer(self) -> None:
        p = self.peer
        self.peer = None
        if p is None:
            return
        if p.public_key is None:
            self.error(p.line, "[Peer] without PublicKey; the block is ignored", "add `PublicKey = <key>`")
            return
        p.comments.inside = [t for n, t in p.inside if n < p.last_key_line]
        name, source, labels = peer_name(p.comments)
        old = self.peers.get(p.public_key)
        allowed = (
            _apply_allowed([], p.allowed) if old is None else _apply_allowed(list(old.allowed_ips), p.allowed)
        )
        if old is not None:  # wg merges blocks of the same key: later values win, AllowedIPs add up
            name, source = name or old.name, source if name else old.name_source
            labels = list(old.labels) + labels
        self.peers[p.public_key] = ConfigPeer(
            public_key=p.public_key,
            preshared_key_present=p.psk_present or (old is not None and old.preshared_key_present),
            preshared_key_fingerprint=p.psk_fp or (old.preshared_key_fingerprint if old else None),
            allowed_ips=tuple(allowed),
            endpoint=p.endpoint or (old.endpoint if old else None),
            persistent_keepalive=p.keepalive
            if p.keepalive is not None
            else (old.persistent_keepalive if old else None),
            name=name,
            name_source=source,
            labels=tuple(labels),
            line=old.line if old is not None else p.line,
        )

    def header(self, lineno: int, compact: str) -> None:
        low = compact.lower()
        self.finish_peer()
        before = [t for _, t in self.pending]
        self.pending = []
        if low in _INTERFACE_SECTIONS:
            self.section = "interface"
            if _INTERFACE_SECTIONS[low] == "networkd":
                self.dialect = "networkd"
            if self.iface is None:
                self.iface = _Iface(line=lineno)
        elif low in _PEER_SECTIONS:
            self.section = "peer"
            if _PEER_SECTIONS[low] == "networkd":
                self.dialect = "networkd"
            self.peer = _Peer(lineno, PeerComments(before, [], None, self.wrapper))
        elif low.endswith("]"):
            self.section = "other"
            if low not in _IGNORED_SECTIONS:
                self.error(lineno, "unknown section; its lines are ignored", "use [Interface] or [Peer]")
        else:
            # its lines are skipped rather than merged into the block above: a key meant for a new
            # peer must never be attributed to the previous one
            self.section = "other"
            self.error(
                lineno, "malformed section header; its lines are ignored", "write [Interface] or [Peer]"
            )

    def comment(self, lineno: int, text: str) -> None:
        self.pending.append((lineno, text))
        ev = wrapper_event(text)
        if ev is not None:
            self.wrapper = ev[1]
        if self.peer is not None:
            if self.peer.line == lineno - 1:
                self.peer.comments.first_inside = text
            self.peer.inside.append((lineno, text))

    # ---------------------------------------------------------------- keys
    def key_line(self, lineno: int, raw: str, content: str, compact: str) -> None:
        self.pending = []
        key, sep, value = compact.partition("=")
        low = key.lower()
        if not sep:
            self.error(lineno, "line unrecognized (no `=`)", "write `Key = value`")
            return
        shown = key if _KEY_NAME.match(key) else "?"
        if self.section is None:
            self.error(lineno, f"key `{shown}` outside any section", "put it under [Interface] or [Peer]")
            return
        if self.section == "other":
            return
        try:
            if self.section == "interface":
                self.interface_key(lineno, low, shown, value, raw, content)
            else:
                self.peer_key(lineno, low, shown, value)
        except ValueError:
            self.error(lineno, f"invalid value for `{shown}`; the line is ignored")

    def interface_key(self, lineno: int, low: str, shown: str, value: str, raw: str, content: str) -> None:
        it = self.iface
        assert it is not None
        if low in _WG_QUICK and self.dialect == "wg":
            self.dialect = "wg-quick"
        if low == "privatekey":
            captured = _captured(value)
            if captured is not None:
                it.priv_fp, it.pub = captured
                return
            raw_key = _key32(value)
            if raw_key is None:
                raise ValueError
            it.priv_fp, it.pub = self.fp.of_raw(raw_key), public_key_of(raw_key)
        elif low == "listenport":
            it.listen_port = _port(value)
        elif low == "fwmark":
            n = 0 if value.lower() == "off" else int(value, 0)
            if not 0 <= n < 2**32:
                raise ValueError
            it.fwmark = n
        elif low in _HOOKS:
            cmd = raw.split("=", 1)[1].strip()  # wg-quick keeps `#` and spacing in hooks
            it.hooks.append((_HOOKS[low], redact_keys(cmd, self.fp)))
        elif low in ("address", "dns"):
            items = [x for x in re.split(r"[,\s]+", content.split("=", 1)[1].strip()) if x]
            if low == "address":
                it.addresses.extend(str(ipaddress.ip_interface(x)) for x in items)
            else:
                it.dns.extend(items)
        elif low == "mtu":
            mtu = int(value, 10)
            if not 0 < mtu <= 65535:
                raise ValueError
            it.mtu = mtu
        elif low == "table":
            if not value:
                raise ValueError
            it.table = content.split("=", 1)[1].strip()
        elif low == "saveconfig":
            if value.lower() not in ("true", "false"):
                raise ValueError
            it.save_config = value.lower() == "true"
        elif low in _EXTRA_INTERFACE:
            it.extra[_EXTRA_INTERFACE[low]] = redact_keys(value, self.fp)
        else:
            self.error(lineno, f"unknown key `{shown}` in [Interface]; the line is ignored")

    def peer_key(self, lineno: int, low: str, shown: str, value: str) -> None:
        p = self.peer
        assert p is not None
        p.last_key_line = lineno
        if low == "publickey":
            raw_key = _key32(value)
            if raw_key is None:
                raise ValueError
            p.public_key = base64.b64encode(raw_key).decode()
        elif low == "presharedkey":
            captured = _captured(value)
            if captured is not None:
                p.psk_present, p.psk_fp = True, captured[0]
                return
            raw_key = _key32(value)
            if raw_key is None:
                raise ValueError
            p.psk_present, p.psk_fp = True, self.fp.of_raw(raw_key)
        elif low == "allowedips":
            items = [x for x in value.split(",") if x]
            parsed = []
            for item in items:
                sign = item[0] if item[0] in "+-" else ""
                parsed.append(sign + _network(item[len(sign) :]))
            p.allowed.extend(parsed)
        elif low == "endpoint":
            p.endpoint = _endpoint(value)
        elif low == "persistentkeepalive":
            p.keepalive = 0 if value.lower() == "off" else _port(value)
        elif low in _EXTRA_PEER:
            if low == "presharedkeyfile":
                p.psk_present = True
        else:
            self.error(lineno, f"unknown key `{shown}` in [Peer]; the line is ignored")

    def result(self, lines: int) -> ParsedConfig:
        self.finish_peer()
        it = self.iface
        iface = None
        if it is not None:
            iface = ConfigInterface(
                private_key_present=it.priv_fp is not None or "PrivateKeyFile" in it.extra,
                private_key_fingerprint=it.priv_fp,
                public_key=it.pub,
                listen_port=it.listen_port,
                fwmark=it.fwmark,
                addresses=tuple(it.addresses),
                dns=tuple(it.dns),
                mtu=it.mtu,
                table=it.table,
                save_config=it.save_config,
                hooks=tuple(it.hooks),
                extra=tuple(sorted(it.extra.items())),
                line=it.line,
            )
        return ParsedConfig(
            file=self.file,
            interface=iface,
            peers=self.peers,
            dialect=self.dialect,
            errors=tuple(self.errors),
            lines=lines,
        )


def _apply_allowed(current: list[str], ops: list[str]) -> list[str]:
    for op in ops:
        if op.startswith("-"):
            net = op[1:]
            current = [c for c in current if c != net]
        else:
            net = op.lstrip("+")
            if net not in current:
                current.append(net)
    return current


def parse_config(data: str | bytes, file: str, fp: Fingerprinter) -> ParsedConfig:
    """Parse a whole file. Bad lines become located errors; nothing else is lost."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    p = _Parser(file, fp)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        raw = line[:-1] if line.endswith("\r") else line
        hash_at = raw.find("#")
        content = raw if hash_at < 0 else raw[:hash_at]
        compact = "".join(content.split())
        if not compact:
            if hash_at >= 0:
                p.comment(lineno, raw[hash_at + 1 :])
            else:
                p.pending = []  # a blank line ends a run of comments
            continue
        if compact.startswith("["):
            p.header(lineno, compact)
        else:
            p.key_line(lineno, raw, content, compact)
    return p.result(len(lines))

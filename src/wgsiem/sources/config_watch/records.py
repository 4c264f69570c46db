"""Typed records of one WireGuard configuration file, as parsed — public data and fingerprints only.

A private key is kept only as a *keyed* fingerprint (HMAC-SHA256 under the collector's secret, the same
:class:`~wgsiem.sources.wg_state.records.Fingerprinter` ``wg_state`` uses, so a fingerprint from a file
equals the one of the running interface) plus the public key derived from it; a preshared key only as
presence and fingerprint. These records are what is persisted between runs and what the differ
compares, so nothing secret can leak through them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wgsiem.errors import Location, ParseError

__all__ = [
    "ConfigInterface",
    "ConfigPeer",
    "FileMeta",
    "FileVersion",
    "ParsedConfig",
    "config_from_dict",
    "config_to_dict",
    "version_from_dict",
    "version_to_dict",
]

HOOK_KINDS = ("PreUp", "PostUp", "PreDown", "PostDown")


@dataclass(frozen=True, slots=True)
class ConfigInterface:
    private_key_present: bool = False
    private_key_fingerprint: str | None = None
    public_key: str | None = None  # derived from the private key (X25519)
    listen_port: int | None = None  # None = not set (random port)
    fwmark: int | None = None  # None = not set, 0 = off
    addresses: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    mtu: int | None = None
    table: str | None = None
    save_config: bool | None = None
    hooks: tuple[tuple[str, str], ...] = ()  # (PreUp|PostUp|PreDown|PostDown, command) in file order
    extra: tuple[tuple[str, str], ...] = ()  # keys of dialects `wg` does not know (AmneziaWG, networkd)
    line: int = 0

    def hooks_of(self, kind: str) -> list[str]:
        return [cmd for k, cmd in self.hooks if k == kind]


@dataclass(frozen=True, slots=True)
class ConfigPeer:
    public_key: str
    preshared_key_present: bool = False
    preshared_key_fingerprint: str | None = None
    allowed_ips: tuple[str, ...] = ()  # networks, host bits cleared, file order
    endpoint: str | None = None  # as written, IP literals canonicalised
    persistent_keepalive: int | None = None  # None = not set, 0 = off
    name: str | None = None  # friendly name from a comment convention
    name_source: str | None = None  # which convention gave the name
    labels: tuple[tuple[str, str], ...] = ()  # other comment metadata (ids, email, friendly_json)
    line: int = 0  # line of the [Peer] header


@dataclass(frozen=True, slots=True)
class ParsedConfig:
    file: str
    interface: ConfigInterface | None
    peers: dict[str, ConfigPeer]  # public key → peer, file order
    dialect: str  # "wg" | "wg-quick" | "networkd"
    errors: tuple[ParseError, ...] = ()
    lines: int = 0

    @property
    def holds_secrets(self) -> bool:
        iface = self.interface
        return bool(
            (iface is not None and iface.private_key_present)
            or any(p.preshared_key_present for p in self.peers.values())
        )


@dataclass(frozen=True, slots=True)
class FileMeta:
    """What ``stat`` says of the file (owner, mode, mtime): who could read it and when it changed."""

    uid: int
    gid: int
    user: str | None
    group: str | None
    mode: int  # permission bits only
    mtime: float
    size: int
    inode: int = 0

    @property
    def world_accessible(self) -> bool:
        """wg-quick's warning condition: any permission bit for "other"."""
        return bool(self.mode & 0o007)

    @property
    def world_readable(self) -> bool:
        return bool(self.mode & 0o004)


@dataclass(frozen=True, slots=True)
class FileVersion:
    """One observed version of one watched file."""

    key: str  # what versions are tracked by: the path (live) or ``replay:<iface>``
    path: str
    interface: str
    sha256: str
    meta: FileMeta | None
    config: ParsedConfig = field(compare=False)

    @property
    def exposed(self) -> bool:
        """The file holds a private or preshared key and "other" may access it."""
        return self.meta is not None and self.meta.world_accessible and self.config.holds_secrets


# ------------------------------------------------------------------ persistence (public data only)
def _pairs(v: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(a), str(b)) for a, b in v)


def config_to_dict(c: ParsedConfig) -> dict[str, Any]:
    iface = c.interface
    return {
        "file": c.file,
        "dialect": c.dialect,
        "lines": c.lines,
        "errors": [[e.location.line if e.location else None, e.what] for e in c.errors],
        "interface": None
        if iface is None
        else {
            "private_key_present": iface.private_key_present,
            "private_key_fingerprint": iface.private_key_fingerprint,
            "public_key": iface.public_key,
            "listen_port": iface.listen_port,
            "fwmark": iface.fwmark,
            "addresses": list(iface.addresses),
            "dns": list(iface.dns),
            "mtu": iface.mtu,
            "table": iface.table,
            "save_config": iface.save_config,
            "hooks": [list(h) for h in iface.hooks],
            "extra": [list(h) for h in iface.extra],
            "line": iface.line,
        },
        "peers": [
            {
                "public_key": p.public_key,
                "preshared_key_present": p.preshared_key_present,
                "preshared_key_fingerprint": p.preshared_key_fingerprint,
                "allowed_ips": list(p.allowed_ips),
                "endpoint": p.endpoint,
                "persistent_keepalive": p.persistent_keepalive,
                "name": p.name,
                "name_source": p.name_source,
                "labels": [list(x) for x in p.labels],
                "line": p.line,
            }
            for p in c.peers.values()
        ],
    }


def config_from_dict(d: dict[str, Any]) -> ParsedConfig:
    i = d["interface"]
    iface = (
        None
        if i is None
        else ConfigInterface(
            private_key_present=bool(i["private_key_present"]),
            private_key_fingerprint=i["private_key_fingerprint"],
            public_key=i["public_key"],
            listen_port=i["listen_port"],
            fwmark=i["fwmark"],
            addresses=tuple(i["addresses"]),
            dns=tuple(i["dns"]),
            mtu=i["mtu"],
            table=i["table"],
            save_config=i["save_config"],
            hooks=_pairs(i["hooks"]),
            extra=_pairs(i["extra"]),
            line=int(i["line"]),
        )
    )
    peers = {}
    for p in d["peers"]:
        peer = ConfigPeer(
            public_key=p["public_key"],
            preshared_key_present=bool(p["preshared_key_present"]),
            preshared_key_fingerprint=p["preshared_key_fingerprint"],
            allowed_ips=tuple(p["allowed_ips"]),
            endpoint=p["endpoint"],
            persistent_keepalive=p["persistent_keepalive"],
            name=p["name"],
            name_source=p["name_source"],
            labels=_pairs(p["labels"]),
            line=int(p["line"]),
        )
        peers[peer.public_key] = peer
    errors = tuple(
        ParseError(str(what), location=Location(d["file"], line)) for line, what in d.get("errors", [])
    )
    return ParsedConfig(
        file=d["file"], interface=iface, peers=peers, dialect=d["dialect"], errors=errors, lines=d["lines"]
    )


def version_to_dict(v: FileVersion) -> dict[str, Any]:
    m = v.meta
    return {
        "key": v.key,
        "path": v.path,
        "interface": v.interface,
        "sha256": v.sha256,
        "meta": None
        if m is None
        else {
            "uid": m.uid,
            "gid": m.gid,
            "user": m.user,
            "group": m.group,
            "mode": m.mode,
            "mtime": m.mtime,
            "size": m.size,
            "inode": m.inode,
        },
        "config": config_to_dict(v.config),
    }


def version_from_dict(d: dict[str, Any]) -> FileVersion:
    m = d["meta"]
    meta = None if m is None else FileMeta(**m)
    return FileVersion(
        key=d["key"],
        path=d["path"],
        interface=d["interface"],
        sha256=d["sha256"],
        meta=meta,
        config=config_from_dict(d["config"]),
    )

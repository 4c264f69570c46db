"""Identities from the comments management tools write into WireGuard config files.

The file is read with ``config_watch``'s parser (:func:`~wgsiem.sources.config_watch.parser.parse_config`),
so every naming convention it knows (wg-easy, wg-portal, wireguard-ui, PiVPN, Nyr …) works here too. A
comment name is a *peer* name (often a device: ``alice-laptop``); it becomes ``wireguard.peer.name`` and,
when nothing better knows the peer, ``user.name``. An ``Email:`` comment becomes ``user.email``.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from wgsiem.errors import Location, ParseError, WgsiemError
from wgsiem.sources.config_watch.parser import parse_config
from wgsiem.sources.wg_state.records import Fingerprinter

from .inventory import Identity

__all__ = ["expand", "identities_from_config", "read_configs"]


def expand(patterns: list[str]) -> list[Path]:
    """Config files matching the globs, sorted, each once."""
    out: dict[str, Path] = {}
    for pat in patterns:
        matches = sorted(glob.glob(pat)) if glob.has_magic(pat) else [pat]
        for m in matches:
            out.setdefault(m, Path(m))
    return list(out.values())


def identities_from_config(
    text: str, file: str, *, name_as_user: bool
) -> tuple[list[Identity], list[ParseError]]:
    """Pure: one identity per named (or e-mailed) peer of one config file; the parser's errors."""
    # the parser fingerprints preshared/private keys; this transform needs none, so a throwaway secret
    parsed = parse_config(text, file, Fingerprinter(os.urandom(32)))
    out = []
    for peer in parsed.peers.values():
        email = next((v for k, v in peer.labels if k == "email"), None)
        if peer.name is None and email is None:
            continue
        out.append(
            Identity(
                public_key=peer.public_key,
                name=peer.name if name_as_user else None,
                email=email,
                peer_name=peer.name,
                sources=("config",),
                location=Location(file, peer.line),
            )
        )
    return out, list(parsed.errors)


def read_configs(patterns: list[str], *, name_as_user: bool) -> tuple[list[Identity], list[WgsiemError]]:
    """Read every file; a file that cannot be read is one problem, the others are still used."""
    found: list[Identity] = []
    problems: list[WgsiemError] = []
    for path in expand(patterns):
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append(
                WgsiemError(
                    f"enrich_identity: cannot read config file ({exc.strerror})",
                    location=Location(str(path)),
                    fix="check config_paths and the file's permissions",
                )
            )
            continue
        idents, errs = identities_from_config(
            data.decode("utf-8", "replace"), str(path), name_as_user=name_as_user
        )
        found.extend(idents)
        problems.extend(errs)
    return found, problems

"""``wgsiem privacy``: key management and ``reveal`` for holders of a pseudonymization key.

``reveal`` cannot invert HMAC; it recomputes the pseudonym of every identifying value the identity
sources know (inventory rows, config comment names) under the key the pseudonym names, and prints the
values that match. A value that no source lists cannot be revealed — that is the point.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from wgsiem.errors import ConfigError, Location, WgsiemError

__all__ = ["privacy"]

_PSEUDONYM = re.compile(r"^(?:ps:([A-Za-z0-9_.-]{1,32}):)?([0-9a-f]{16,64})$")


@click.group()
def privacy() -> None:
    """Pseudonymization keys, and mapping a pseudonym back to the identity it stands for."""


@privacy.command("reveal")
@click.argument("pseudonym_text", metavar="PSEUDONYM")
@click.option("--key-file", required=True, type=click.Path(dir_okay=False), help="the privacy key file")
@click.option(
    "--inventory",
    "inventory_path",
    type=click.Path(dir_okay=False),
    help="identity inventory (.yaml/.csv) whose values are tried",
)
@click.option(
    "--config-file",
    "config_globs",
    multiple=True,
    help="WireGuard config file(s) (glob, repeatable) whose comment names are tried too",
)
def reveal(
    pseudonym_text: str, key_file: str, inventory_path: str | None, config_globs: tuple[str, ...]
) -> None:
    """Print the identity values whose pseudonym is PSEUDONYM (ps:<key id>:<hex>)."""
    from wgsiem.enrich.apply_privacy.keys import load_keys
    from wgsiem.enrich.enrich_identity.config_comments import read_configs
    from wgsiem.enrich.enrich_identity.directory import load_inventory
    from wgsiem.enrich.enrich_identity.inventory import Identity

    m = _PSEUDONYM.match(pseudonym_text.strip())
    if m is None:
        raise WgsiemError(
            "not a pseudonym", fix="give the value as written in the event, e.g. ps:k2026a:3f2c…"
        )
    key_id, hex_part = m.group(1), m.group(2)
    if inventory_path is None and not config_globs:
        raise WgsiemError("nothing to search", fix="give --inventory and/or --config-file")
    ring = load_keys(key_file)
    if key_id is not None:
        key = ring.get(key_id)
        if key is None:
            raise ConfigError(
                f"key {key_id} is not in the key file",
                location=Location(key_file),
                fix="use the key file that still holds that (older) key",
            )
        keys = [key]
    else:
        keys = list(ring.keys)
    identities: list[Identity] = []
    if inventory_path is not None:
        idents, problems = load_inventory(Path(inventory_path))
        identities.extend(idents)
        for p in problems:
            click.echo(f"warning: {p.render()}", err=True)
    if config_globs:
        idents2, problems2 = read_configs(list(config_globs), name_as_user=True)
        identities.extend(idents2)
        for p2 in problems2:
            click.echo(f"warning: {p2.render()}", err=True)
    found: set[tuple[str, str, str, str]] = set()
    for ident in identities:
        for field, value in ident.values().items():
            for k in keys:
                if k.digest(value).startswith(hex_part):
                    found.add((k.id, field, value, ident.public_key))
    if not found:
        raise WgsiemError(
            "no known identity value has this pseudonym",
            fix="check the key file (an older key id?) and that the inventory lists the user",
        )
    for kid, field, value, pub in sorted(found):
        click.echo(f"{field}\t{value}\t(peer {pub}, key {kid})")


@privacy.command("new-key")
@click.option("--key-file", required=True, type=click.Path(dir_okay=False), help="created with mode 0600")
@click.option("--id", "key_id", required=True, help="key id written on events, e.g. 2026-11")
def new_key(key_file: str, key_id: str) -> None:
    """Add a fresh random key as the first (active) line; older keys stay for reveal."""
    from wgsiem.enrich.apply_privacy.keys import check_mode, new_key_line, parse_keys

    line = new_key_line(key_id)
    path = Path(key_file)
    old = ""
    if path.exists():
        check_mode(path)
        old = path.read_text(encoding="utf-8")
        if old.strip() and any(k.id == key_id for k in parse_keys(old, key_file)):
            raise ConfigError(
                f"key id {key_id} already exists", location=Location(key_file), fix="pick a new id"
            )
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (line + old).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    click.echo(f"{key_file}: key {key_id} added and active; restart wgsiem to use it")

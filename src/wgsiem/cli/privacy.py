"""``wgsiem privacy``: key management and ``reveal`` for holders of a pseudonymization key.

``reveal`` cannot invert HMAC; it recomputes the pseudonym of every identifying value the identity
sources know (inventory rows, config comment names, the users of the LDAP directory ``enrich_identity``
reads) under the key the pseudonym names, and prints the values that match
(``wgsiem.enrich.apply_privacy.reveal``). A value that no source lists cannot be revealed — that is the
point.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from wgsiem.errors import ConfigError, Location, WgsiemError

__all__ = ["privacy"]


@click.group()
def privacy() -> None:
    """Pseudonymization keys, and mapping a pseudonym back to the identity it stands for."""


@privacy.command("reveal")
@click.argument("pseudonym_text", metavar="PSEUDONYM")
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False),
    help="wgsiem configuration: search what its enrich_identity transforms read (inventory, config "
    "comments, LDAP) with its apply_privacy key file",
)
@click.option("--key-file", type=click.Path(dir_okay=False), help="the privacy key file")
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
    pseudonym_text: str,
    config_path: str | None,
    key_file: str | None,
    inventory_path: str | None,
    config_globs: tuple[str, ...],
) -> None:
    """Print the identity values whose pseudonym is PSEUDONYM (ps:<key id>:<hex>)."""
    from wgsiem.enrich.apply_privacy.keys import load_keys
    from wgsiem.enrich.apply_privacy.reveal import (
        IdentitySources,
        gather,
        matches,
        parse_pseudonym,
        sources_from_config,
    )

    pseudonym = parse_pseudonym(pseudonym_text)
    sources = IdentitySources((inventory_path,) if inventory_path else (), config_globs)
    if config_path is not None:
        from wgsiem.config.loader import load_config

        sources = sources.plus(sources_from_config(load_config(config_path)))
    if not sources:
        raise WgsiemError(
            "nothing to search",
            fix="give --config (its enrich_identity inventory, config files and LDAP), --inventory "
            "and/or --config-file",
        )
    key_file = key_file or sources.key_file
    if key_file is None:
        raise WgsiemError(
            "no key file", fix="give --key-file, or a --config whose apply_privacy has key_file"
        )
    ring = load_keys(key_file)
    if pseudonym.key_id is not None:
        key = ring.get(pseudonym.key_id)
        if key is None:
            raise ConfigError(
                f"key {pseudonym.key_id} is not in the key file",
                location=Location(key_file),
                fix="use the key file that still holds that (older) key",
            )
        keys = [key]
    else:
        keys = list(ring.keys)
    identities = gather(sources, lambda problem: click.echo(f"warning: {problem}", err=True))
    found = matches(pseudonym.hex, keys, identities)
    if not found:
        raise WgsiemError(
            "no known identity value has this pseudonym",
            fix="check the key file (an older key id?) and that the inventory or directory lists the user",
        )
    for m in found:
        click.echo(f"{m.field}\t{m.value}\t(peer {m.public_key}, key {m.key_id})\t{'+'.join(m.sources)}")


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

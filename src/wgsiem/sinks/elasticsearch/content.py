"""``wgsiem export elastic --out DIR``: write the Elastic content pack (see :mod:`.pack`)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .pack import build_pack, detection_rules

__all__ = ["export_elastic"]


@click.command("elastic")
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False), help="folder to write the pack into"
)
@click.option(
    "--retention-days",
    type=click.IntRange(1, 3650),
    default=180,
    show_default=True,
    help="ILM: delete data this many days after rollover",
)
@click.option(
    "--namespace", default="default", show_default=True, help="data stream namespace for the dump path"
)
def export_elastic(out: str, retention_days: int, namespace: str) -> None:
    """Index templates, ILM, ingest pipeline, Beats/Logstash configs, roles, dashboard and rules."""
    from .config import ElasticsearchSinkConfig

    ElasticsearchSinkConfig(type="elasticsearch", namespace=namespace)  # same rule as the sink
    root = Path(out)
    files = build_pack(retention_days=retention_days, namespace=namespace)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if rel.endswith(".sh"):
            os.chmod(path, 0o755)
    click.echo(f"wrote {len(files)} files to {root}")
    _, why = detection_rules()
    if why:
        click.echo(f"note: detection rules not included: {why}", err=True)

"""``wgsiem export <target> --out DIR``: ready-to-install content for the SIEM a team runs.

Each target lives with the code it belongs to and is mounted here when present:

* ``elastic`` — ``wgsiem.sinks.elasticsearch.content:export_elastic``
* ``splunk`` — ``wgsiem.sinks.splunk_hec.content:export_splunk``
* ``sigma`` — ``wgsiem.detect.export:export_sigma``
"""

from __future__ import annotations

import importlib
import importlib.util

import click

__all__ = ["export"]

EXPORT_TARGETS: tuple[tuple[str, str], ...] = (
    ("wgsiem.sinks.elasticsearch.content", "export_elastic"),
    ("wgsiem.sinks.splunk_hec.content", "export_splunk"),
    ("wgsiem.detect.export", "export_sigma"),
)


@click.group()
def export() -> None:
    """Write SIEM content packs and portable detections to a folder."""


for _module, _attr in EXPORT_TARGETS:
    if importlib.util.find_spec(_module) is not None:
        export.add_command(getattr(importlib.import_module(_module), _attr))

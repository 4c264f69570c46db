"""What every source gets and what every source offers: the shared contract of ``sources/<name>/``.

A source is a noun folder (``kernel_log``, ``netflow``) holding ``config.py`` (its pydantic model, with
``type: Literal["<name>"]``), a pure parser, and a runtime class registered in
:mod:`wgsiem.sources.registry`. The runtime class is built as ``Cls(component_id, config, ctx)`` with a
:class:`SourceContext` and satisfies :class:`wgsiem.pipeline.runtime.Source` (``async run(emit, stop)``;
optional ``save_state()``, ``close()``, ``status()``).

**Replay** (``wgsiem replay``) runs the same processing over captured files in event-time order. A source
that can be replayed also offers:

* ``replay_detect(path, head) -> bool`` (a ``staticmethod``): does this file belong to this source?
  ``head`` is the file's first 4 KiB.
* ``replay_read(path) -> Iterator[ReplayItem]`` (a ``staticmethod``): the file's records, each with the
  event time taken from the data (never the wall clock), in file order. A bad record is yielded as a
  :class:`ReplayItem` whose ``payload`` is a :class:`wgsiem.errors.ParseError`; the driver counts and
  reports it and goes on.
* ``process(payload, at) -> list[Envelope]`` (an instance method): what the live source would emit for
  that record at event time ``at``. The live ``run()`` must go through the same ``process`` so a replay
  gives the same events as the live run.

The driver merges every file's items by time, so a kernel line at 12:00:05 is processed after the dump
snapshot of 12:00:00 and its ``peer N`` correlation sees the peers as they were then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wgsiem.pipeline.telemetry import ComponentTelemetry
from wgsiem.sources.peer_directory import PeerDirectory

__all__ = ["ReplayItem", "SourceContext"]


@dataclass(slots=True)
class SourceContext:
    """Shared by every source of one wgsiem process.

    ``peers`` is the live view of every WireGuard peer the ``wg_state`` sources know (public key,
    endpoint and its history, AllowedIPs, interface), for correlation: kernel ``peer N``, wireguard-go
    ``peer(ABCD…wxyz)``, a flow's tunnel address, config drift. It is empty when no ``wg_state`` source
    runs; sources must then still work and say the attribution is unknown.

    ``state_dir/<source type>/<component id>.*`` is where a source persists its position (mode 0600).
    ``replay`` is true under ``wgsiem replay``: no live I/O, event time only.
    """

    hostname: str
    state_dir: Path
    telemetry: ComponentTelemetry
    peers: PeerDirectory
    replay: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReplayItem:
    """One record of a captured file: its event time (epoch seconds) and what ``process`` takes."""

    time: float
    payload: Any
    location: str = ""  # file:line or file:offset, for error reports

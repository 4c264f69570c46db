"""Source type name → runtime class, imported lazily so one source's dependencies never slow another.

Each class is built as ``Cls(component_id, config, ctx)`` with a :class:`~wgsiem.sources.base.SourceContext`.
"""

from __future__ import annotations

import importlib
from typing import Any

from wgsiem.sources.base import SourceContext

__all__ = ["SOURCE_CLASSES", "build_source", "source_class"]

SOURCE_CLASSES: dict[str, str] = {
    "wg_state": "wgsiem.sources.wg_state.source:WgStateSource",
    "kernel_log": "wgsiem.sources.kernel_log.source:KernelLogSource",
    "wggo_log": "wgsiem.sources.wggo_log.source:WggoLogSource",
    "config_watch": "wgsiem.sources.config_watch.source:ConfigWatchSource",
    "netflow": "wgsiem.sources.netflow.source:NetflowSource",
    "context": "wgsiem.sources.context.source:ContextSource",
    "host": "wgsiem.sources.host.source:HostSource",
}


def source_class(type_name: str) -> Any:
    module, _, name = SOURCE_CLASSES[type_name].partition(":")
    return getattr(importlib.import_module(module), name)


def build_source(component_id: str, config: Any, ctx: SourceContext) -> Any:
    cls = source_class(config.type)
    if config.type == "wg_state":
        return cls(
            component_id,
            config,
            hostname=ctx.hostname,
            state_dir=ctx.state_dir,
            telemetry=ctx.telemetry,
            peers=ctx.peers,
        )
    return cls(component_id, config, ctx)

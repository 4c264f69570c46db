"""Per-component telemetry every component reports the same way (Vector's component spec).

received, sent, dropped (by reason), errors (by type and stage). Exposed in ``wgsiem status`` and,
later, on ``/metrics``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ComponentTelemetry", "TelemetryRegistry"]


@dataclass(slots=True)
class ComponentTelemetry:
    component_id: str
    kind: str  # "source" | "transform" | "sink"
    component_type: str
    received: int = 0
    sent: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None
    gauges: dict[str, float] = field(default_factory=dict)
    """Current values a component reports besides the counters (an outbox's queue depth, lag …);
    exposed as ``wgsiem_component_<name>`` gauges. Only in the snapshot when a component sets one."""

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] += n

    def error(self, error_type: str, stage: str, message: str | None = None) -> None:
        self.errors[f"{error_type}@{stage}"] += 1
        if message is not None:
            self.last_error = message

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.component_id,
            "kind": self.kind,
            "type": self.component_type,
            "received": self.received,
            "sent": self.sent,
            "dropped": dict(self.dropped),
            "errors": dict(self.errors),
            "last_error": self.last_error,
        }
        if self.gauges:
            out["gauges"] = dict(self.gauges)
        return out


class TelemetryRegistry:
    """All components' telemetry in one place, in registration order."""

    def __init__(self) -> None:
        self._components: dict[str, ComponentTelemetry] = {}

    def register(self, component_id: str, kind: str, component_type: str) -> ComponentTelemetry:
        if component_id in self._components:
            return self._components[component_id]
        tel = ComponentTelemetry(component_id, kind, component_type)
        self._components[component_id] = tel
        return tel

    def get(self, component_id: str) -> ComponentTelemetry:
        return self._components[component_id]

    def snapshot(self) -> list[dict[str, Any]]:
        return [c.snapshot() for c in self._components.values()]

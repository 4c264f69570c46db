"""The built-in stateful detectors (see :mod:`wgsiem.detect.detector` for the contract).

Each is named by a rule file in ``wgsiem/detect/rules/`` (``wgsiem.detector: <module>:<Class>``) that
holds its metadata, default options and sample sequences. Options are pydantic models (unknown keys are
rejected), so a typo in ``detect.detector_options`` fails at start with the field's name.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["DetectorOptions", "action", "dataset"]


class DetectorOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def action(doc: dict[str, Any]) -> str:
    ev = doc.get("event")
    return str(ev.get("action", "")) if type(ev) is dict else ""


def dataset(doc: dict[str, Any]) -> str:
    ev = doc.get("event")
    return str(ev.get("dataset", "")) if type(ev) is dict else ""


def event_id_of(doc: dict[str, Any]) -> str | None:
    ev = doc.get("event")
    if type(ev) is dict and ev.get("id") is not None:
        return str(ev["id"])
    return None

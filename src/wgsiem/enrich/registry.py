"""Transform type name → class, imported lazily."""

from __future__ import annotations

import importlib
from typing import Any

from wgsiem.enrich.base import TransformContext

__all__ = ["TRANSFORM_CLASSES", "build_transform"]

TRANSFORM_CLASSES: dict[str, str] = {
    "enrich_geo": "wgsiem.enrich.enrich_geo.transform:EnrichGeo",
    "enrich_identity": "wgsiem.enrich.enrich_identity.transform:EnrichIdentity",
    "enrich_assets": "wgsiem.enrich.enrich_assets.transform:EnrichAssets",
    "score_risk": "wgsiem.enrich.score_risk.transform:ScoreRisk",
    "apply_privacy": "wgsiem.enrich.apply_privacy.transform:ApplyPrivacy",
    "detect": "wgsiem.detect.engine:DetectionEngine",
}


def build_transform(transform_id: str, config: Any, ctx: TransformContext) -> Any:
    module, _, name = TRANSFORM_CLASSES[config.type].partition(":")
    return getattr(importlib.import_module(module), name)(transform_id, config, ctx)

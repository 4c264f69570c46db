"""Transform type name → class, imported lazily."""

from __future__ import annotations

import importlib
import itertools
from typing import Any

from wgsiem.enrich.base import TransformContext

__all__ = ["TRANSFORM_CLASSES", "build_transform", "fuse_transforms"]

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


def fuse_transforms(transforms: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Every run of geo → identity → assets → risk in ``transforms`` as one fused pass
    (:func:`wgsiem.enrich.fused_chain.fuse_transforms`; imported only when such a run exists)."""
    fusable = {"enrich_geo", "enrich_identity", "enrich_assets", "score_risk"}
    names = [getattr(proc, "__name__", None) for _tid, proc in transforms]
    if not any(a in fusable and b in fusable for a, b in itertools.pairwise(names)):
        return transforms
    from wgsiem.enrich.fused_chain import fuse_transforms as fuse

    return fuse(transforms)

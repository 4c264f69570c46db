"""Configuration of the ``score_risk`` transform: which factors count, and how much.

Every factor has a ``weight`` (the points it adds at full strength) and maps what it reads to a value
between 0 and 1; the score is ``min(100, base_score + Σ weight × value)``. A weight of 0 turns a factor
off. See docs/enrich/risk.md for what each factor reads.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AnonymizerFactor",
    "AsnFactor",
    "AssetCriticalityFactor",
    "AssetSensitivityFactor",
    "CountryFactor",
    "ScoreRiskConfig",
    "UnknownPeerFactor",
    "UserRiskFactor",
]

Unit = Annotated[float, Field(ge=0, le=1)]


class _Factor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weight: float = Field(0.0, ge=0, le=100, description="points added when the factor's value is 1")


class AssetCriticalityFactor(_Factor):
    weight: float = 30.0
    sides: list[Literal["source", "destination", "observer"]] = Field(
        default=["destination"],
        description="which wireguard.asset.<side> are read; the most critical wins (value = criticality/5)",
    )


class AssetSensitivityFactor(_Factor):
    weight: float = 15.0
    sides: list[Literal["source", "destination", "observer"]] = Field(default=["destination"])
    tags: dict[str, Unit] = Field(
        default={"domain-controller": 1.0, "database": 0.8, "pci": 1.0, "secrets": 1.0},
        description="asset tag → value (0–1); the highest matching tag or environment wins",
    )
    environments: dict[str, Unit] = Field(
        default={"production": 0.6}, description="asset environment → value (0–1)"
    )


class UserRiskFactor(_Factor):
    weight: float = 25.0


class CountryFactor(_Factor):
    weight: float = 20.0
    sides: list[Literal["source", "destination"]] = Field(default=["source"])
    countries: dict[str, Unit] = Field(
        default_factory=dict, description="ISO 3166-1 alpha-2 code → value (0–1); unlisted countries count 0"
    )


class AsnFactor(_Factor):
    weight: float = 15.0
    sides: list[Literal["source", "destination"]] = Field(default=["source"])
    asns: dict[int, Unit] = Field(default_factory=dict, description="AS number → value (0–1)")
    organizations: dict[str, Unit] = Field(
        default_factory=dict,
        description="AS organization name (case-insensitive, exact) → value (0–1); for the bundled "
        "fallback, which knows names but not numbers",
    )


class AnonymizerFactor(_Factor):
    weight: float = 30.0
    sides: list[Literal["source", "destination"]] = Field(default=["source"])
    kinds: dict[Literal["tor", "public_proxy", "vpn", "residential_proxy", "hosting", "any"], Unit] = Field(
        default={
            "tor": 1.0,
            "public_proxy": 0.8,
            "residential_proxy": 0.6,
            "vpn": 0.5,
            "hosting": 0.3,
            "any": 0.3,
        },
        description="wireguard.geo.<side>.anonymizer flag → value (0–1); the highest flag set wins",
    )


class UnknownPeerFactor(_Factor):
    weight: float = 40.0


class ScoreRiskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["score_risk"] = "score_risk"
    base_score: float = Field(0.0, ge=0, le=100, description="score of an event no factor applies to")
    asset_criticality: AssetCriticalityFactor = Field(default_factory=AssetCriticalityFactor)
    asset_sensitivity: AssetSensitivityFactor = Field(default_factory=AssetSensitivityFactor)
    user_risk: UserRiskFactor = Field(default_factory=UserRiskFactor)
    country: CountryFactor = Field(default_factory=CountryFactor)
    asn: AsnFactor = Field(default_factory=AsnFactor)
    anonymizer: AnonymizerFactor = Field(default_factory=AnonymizerFactor)
    unknown_peer: UnknownPeerFactor = Field(default_factory=UnknownPeerFactor)
    levels: dict[Literal["low", "medium", "high", "critical"], float] = Field(
        default={"low": 0.0, "medium": 25.0, "high": 50.0, "critical": 75.0},
        description="lowest score of each wireguard.risk.level",
    )

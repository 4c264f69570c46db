"""score_risk: every factor alone, their sum capped at 100, the explanation adding up to the score."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.enrich.geo_mmdb import context, envelope, flow
from tests.support.ecs import validate
from wgsiem.enrich.score_risk.config import ScoreRiskConfig
from wgsiem.enrich.score_risk.transform import ScoreRisk


def scorer(tmp_path: Path, **cfg: Any) -> ScoreRisk:
    return ScoreRisk("risk", ScoreRiskConfig.model_validate(cfg), context(tmp_path, "risk", "score_risk"))


def score(t: ScoreRisk, doc: dict[str, Any]) -> dict[str, Any]:
    out = t(envelope(doc))
    assert out is not None
    return out.data


def with_wg(**wg: Any) -> dict[str, Any]:
    doc = flow("203.0.113.11", "10.20.5.10")
    doc["wireguard"] = wg
    return doc


def test_an_event_without_any_factor_scores_the_base(tmp_path: Path) -> None:
    doc = score(scorer(tmp_path), flow("203.0.113.11", "10.0.0.1"))
    assert doc["event"]["risk_score"] == 0.0
    assert doc["wireguard"]["risk"] == {"level": "low", "factors": []}
    doc = score(scorer(tmp_path, base_score=10), flow("203.0.113.11"))
    assert doc["event"]["risk_score"] == 10.0
    assert validate(doc) == []


def test_asset_criticality_and_sensitivity(tmp_path: Path) -> None:
    doc = with_wg(
        asset={
            "destination": {
                "name": "hr-db-01",
                "criticality": 5,
                "environment": "production",
                "tags": ["database", "pii"],
            }
        }
    )
    out = score(scorer(tmp_path), doc)
    assert out["wireguard"]["risk"]["factors"] == [
        {
            "name": "asset_criticality",
            "weight": 30.0,
            "value": 1.0,
            "score": 30.0,
            "detail": "destination hr-db-01 criticality 5",
        },
        {
            "name": "asset_sensitivity",
            "weight": 15.0,
            "value": 0.8,
            "score": 12.0,
            "detail": "destination hr-db-01 tag database",
        },
    ]
    assert out["event"]["risk_score"] == 42.0
    assert out["wireguard"]["risk"]["level"] == "medium"


def test_asset_sides_are_configurable(tmp_path: Path) -> None:
    doc = with_wg(asset={"observer": {"name": "gw", "criticality": 4}})
    assert score(scorer(tmp_path), doc)["event"]["risk_score"] == 0.0
    t = scorer(tmp_path, asset_criticality={"sides": ["destination", "observer"]})
    assert (
        score(t, with_wg(asset={"observer": {"name": "gw", "criticality": 4}}))["event"]["risk_score"] == 24.0
    )


@pytest.mark.parametrize(
    ("user", "wg_user", "value", "detail"),
    [
        ({"risk": {"calculated_score_norm": 80}}, None, 0.8, "user.risk.calculated_score_norm 80"),
        ({"risk": {"static_score": 150}}, None, 1.0, "user.risk.static_score 150"),
        ({"risk": {"calculated_level": "High"}}, None, 0.75, "user.risk.calculated_level High"),
        (None, {"risk": 40}, 0.4, "wireguard.user.risk 40"),
        (None, {"risk": "critical"}, 1.0, "wireguard.user.risk critical"),
        (None, {"risk": {"score": 20}}, 0.2, "wireguard.user.risk.score 20"),
        (None, {"risk": {"level": "moderate"}}, 0.5, "wireguard.user.risk moderate"),
    ],
)
def test_user_risk_is_read_from_ecs_or_the_identity_transform(
    tmp_path: Path, user: Any, wg_user: Any, value: float, detail: str
) -> None:
    doc = with_wg(user=wg_user) if wg_user is not None else with_wg()
    if user is not None:
        doc["user"] = user
    (factor,) = score(scorer(tmp_path), doc)["wireguard"]["risk"]["factors"]
    assert (factor["name"], factor["value"], factor["detail"]) == ("user_risk", value, detail)
    assert factor["score"] == round(25 * value, 2)


def test_country_and_asn_lists(tmp_path: Path) -> None:
    t = scorer(
        tmp_path,
        country={"countries": {"KP": 1.0, "ru": 0.5}},
        asn={"asns": {64502: 1.0}, "organizations": {"Shady Hosting": 0.7}},
    )
    doc = flow("192.0.2.1")
    doc["source"]["geo"] = {"country_iso_code": "KP"}
    doc["source"]["as"] = {"number": 64502, "organization": {"name": "Example Bulletproof Ltd"}}
    factors = score(t, doc)["wireguard"]["risk"]["factors"]
    assert [(f["name"], f["score"], f["detail"]) for f in factors] == [
        ("country", 20.0, "source country KP"),
        ("asn", 15.0, "source AS64502"),
    ]
    doc = flow("192.0.2.1")
    doc["source"]["geo"] = {"country_iso_code": "RU"}
    doc["source"]["as"] = {"organization": {"name": "SHADY HOSTING"}}
    factors = score(t, doc)["wireguard"]["risk"]["factors"]
    assert [(f["name"], f["value"]) for f in factors] == [("country", 0.5), ("asn", 0.7)]


def test_anonymizer_highest_flag_wins(tmp_path: Path) -> None:
    doc = with_wg(geo={"source": {"scope": "global", "anonymizer": {"any": True, "vpn": True, "tor": True}}})
    (f,) = score(scorer(tmp_path), doc)["wireguard"]["risk"]["factors"]
    assert (f["name"], f["value"], f["score"], f["detail"]) == (
        "anonymizer",
        1.0,
        30.0,
        "source anonymizer tor",
    )
    doc = with_wg(geo={"source": {"anonymizer": {"any": True, "hosting": True}}})
    (f,) = score(scorer(tmp_path), doc)["wireguard"]["risk"]["factors"]
    assert f["value"] == 0.3


def test_unknown_peer(tmp_path: Path) -> None:
    doc = with_wg(peer={"public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", "known": False})
    (f,) = score(scorer(tmp_path), doc)["wireguard"]["risk"]["factors"]
    assert (f["name"], f["score"], f["detail"]) == ("unknown_peer", 40.0, "peer xTIBA5rb… unknown")
    assert score(scorer(tmp_path), with_wg(peer={"known": True}))["wireguard"]["risk"]["factors"] == []
    assert score(scorer(tmp_path), with_wg(peer={}))["wireguard"]["risk"]["factors"] == []  # no identity data


def test_everything_at_once_is_capped_at_100_and_critical(tmp_path: Path) -> None:
    doc = with_wg(
        asset={"destination": {"name": "dc-01", "criticality": 5, "tags": ["domain-controller"]}},
        geo={"source": {"anonymizer": {"tor": True}}},
        peer={"known": False},
        user={"risk": 90},
    )
    out = score(scorer(tmp_path), doc)
    factors = out["wireguard"]["risk"]["factors"]
    assert sum(f["score"] for f in factors) == 30 + 15 + 22.5 + 30 + 40
    assert out["event"]["risk_score"] == 100.0
    assert out["wireguard"]["risk"]["level"] == "critical"


def test_a_zero_weight_turns_a_factor_off(tmp_path: Path) -> None:
    doc = with_wg(peer={"known": False})
    assert score(scorer(tmp_path, unknown_peer={"weight": 0}), doc)["event"]["risk_score"] == 0.0


def test_status_counts_levels(tmp_path: Path) -> None:
    t = scorer(tmp_path)
    score(t, with_wg(peer={"known": False}))
    score(t, with_wg())
    assert t.status() == {
        "events_scored": 2,
        "mean_score": 20.0,
        "by_level": {"low": 1, "medium": 1, "high": 0, "critical": 0},
    }


def test_config_rejects_values_outside_0_to_1(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ScoreRiskConfig.model_validate({"country": {"countries": {"KP": 5}}})
    with pytest.raises(ValueError):
        ScoreRiskConfig.model_validate({"anonymizer": {"kinds": {"tor": 1.0, "darknet": 1.0}}})


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 200),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.text(max_size=5), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "asset": st.dictionaries(
                st.sampled_from(["destination", "observer", "source"]),
                st.dictionaries(st.sampled_from(["criticality", "tags", "environment", "name"]), _values),
            ),
            "geo": st.dictionaries(
                st.sampled_from(["source", "destination"]),
                st.dictionaries(
                    st.just("anonymizer"), st.dictionaries(st.sampled_from(["tor", "vpn", "x"]), _values)
                ),
            ),
            "peer": st.dictionaries(st.sampled_from(["known", "public_key"]), _values),
            "user": st.dictionaries(st.just("risk"), _values),
        },
    ),
    _values,
)
def test_any_shape_of_input_scores_between_0_and_100_and_the_factors_add_up(
    wg: dict[str, Any], user: Any
) -> None:
    doc = flow("198.51.100.1")
    doc["wireguard"] = wg
    doc["user"] = {"risk": user} if not isinstance(user, dict) else user
    t = ScoreRisk("risk", ScoreRiskConfig(), context(Path("/tmp"), "risk", "score_risk"))
    out = score(t, doc)
    s = out["event"]["risk_score"]
    assert 0 <= s <= 100
    assert s == round(min(100.0, sum(f["score"] for f in out["wireguard"]["risk"]["factors"])), 2)

"""Aftermath alerts: impossible travel back from the attacker's country, after the attack's span."""

from __future__ import annotations

from typing import Any

from wgsiem.detect.evaluate import AFTERMATH_SECS, GRACE_SECS, AlertRecord, score

KEY_A = "A" * 43 + "="
KEY_B = "B" * 43 + "="
MANIFEST = {"poll_interval_secs": 300.0, "spec": {"peers": 10, "days": 7}}


def travel_back(t: float, key: str, previous_country: str | None) -> AlertRecord:
    return AlertRecord(
        "wireguard_unexpected_geography",
        t,
        "user.name",
        "alice",
        key,
        "alice",
        frozenset(),
        47,
        f"a{t}",
        previous_country,
    )


def geo_label(country: str) -> dict[str, Any]:
    return {
        "id": "geo-1",
        "class": "geo",
        "start": 1000.0,
        "end": 2800.0,
        "benign": False,
        "entity": {"peer_key": KEY_A, "user": "alice"},
        "detail": {"country": country},
    }


def test_travel_back_from_the_attackers_country_is_true_but_detects_nothing() -> None:
    """The owner's next handshake, hours later, is impossible travel from where the attacker was:
    about the attack (not false), too late to count as its detection."""
    late = 2800.0 + GRACE_SECS + 4 * 3600
    classes, rules, false_total, undetected = score(
        [travel_back(late, KEY_A, "BR")],
        [geo_label("BR")],
        manifest=MANIFEST,
        rule_names=["wireguard_unexpected_geography"],
    )
    r = rules["wireguard_unexpected_geography"]
    assert (false_total, r.true_alerts, r.aftermath) == (0, 1, 1)
    assert classes["geo"].detected == 0 and undetected == ["geo-1"]


def test_travel_back_from_elsewhere_another_key_or_too_late_is_false() -> None:
    late = 2800.0 + GRACE_SECS + 4 * 3600
    for a in (
        travel_back(late, KEY_A, "RU"),  # not the attack's country
        travel_back(late, KEY_B, "BR"),  # not the victim's key
        travel_back(2800.0 + AFTERMATH_SECS + 1, KEY_A, "BR"),  # days later
        travel_back(late, KEY_A, None),  # not a travel alert
    ):
        _, rules, false_total, _ = score(
            [a], [geo_label("BR")], manifest=MANIFEST, rule_names=["wireguard_unexpected_geography"]
        )
        assert false_total == 1 and rules["wireguard_unexpected_geography"].aftermath == 0

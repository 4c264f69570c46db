"""Property tests: the parser on arbitrary text, bad lines among good ones, the differ and the drift
tracker on random histories."""

from __future__ import annotations

import base64
import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sources.config_watch.support import FP
from wgsiem.errors import ParseError
from wgsiem.sources.config_watch.differ import diff_versions
from wgsiem.sources.config_watch.drift import DriftItem, DriftTracker
from wgsiem.sources.config_watch.parser import parse_config
from wgsiem.sources.config_watch.records import FileVersion, config_from_dict, config_to_dict

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def key(i: int) -> str:
    return base64.b64encode(bytes([i % 256, i // 256]) * 16).decode()


config_chars = st.sampled_from(list("[]=#,:/+-. \t\r\nabcdefPIKLAWEnpeyr0123456789ïΩ\x00"))


@SETTINGS
@given(st.one_of(st.text(), st.text(alphabet=config_chars), st.binary()))
def test_arbitrary_input_never_raises(data: str | bytes) -> None:
    c = parse_config(data, "x.conf", FP)
    assert all(isinstance(e, ParseError) for e in c.errors)
    for e in c.errors:
        assert e.location is not None and e.location.file == "x.conf"
        assert e.location.line is not None and 1 <= e.location.line <= max(c.lines, 1)
    # what is kept round-trips through the persisted form
    assert config_from_dict(config_to_dict(c)).peers == c.peers


BAD_LINES = st.sampled_from(
    [
        "AllowedIPs = 10.0.0.999/32",
        "Endpoint = no-port",
        "PersistentKeepalive = -1",
        "Frobnicate = yes",
        "garbage without equals",
        "PublicKey = tooshort",
        "PresharedKey = tooshort",
        "[Peer",
    ]
)
peer_spec = st.tuples(st.integers(1, 3), st.booleans())


@SETTINGS
@given(
    st.lists(peer_spec, min_size=1, max_size=8),
    st.data(),
)
def test_bad_line_is_located_and_good_peers_are_kept(
    peers: list[tuple[int, bool]], data: st.DataObject
) -> None:
    lines = ["[Interface]", "ListenPort = 51820"]
    expected = {}
    for i, (n_ips, keepalive) in enumerate(peers):
        lines += ["", "[Peer]", f"PublicKey = {key(i + 1)}"]
        ips = tuple(f"10.{i}.{j}.0/24" for j in range(n_ips))
        lines += [f"AllowedIPs = {ip}" for ip in ips]
        if keepalive:
            lines.append("PersistentKeepalive = 25")
        expected[key(i + 1)] = ips
    bad = data.draw(BAD_LINES)
    # a malformed header skips the lines under it (they cannot be attributed): put it at a block end
    candidates = [
        n for n in range(2, len(lines) + 1) if not bad.startswith("[") or n == len(lines) or lines[n] == ""
    ]
    at = data.draw(st.sampled_from(candidates))
    lines.insert(at, bad)
    c = parse_config("\n".join(lines) + "\n", "x.conf", FP)
    assert [e.location.line for e in c.errors if e.location] == [at + 1]
    assert {k: p.allowed_ips for k, p in c.peers.items()} == expected


peer_state = st.tuples(
    st.frozensets(st.integers(0, 5), max_size=3),  # allowed-ip indexes
    st.sampled_from([None, "203.0.113.1:51820", "198.51.100.2:4000"]),
    st.sampled_from([None, 0, 25]),
    st.sampled_from([None, "1" * 42 + "E=", "2" * 42 + "E="]),
)
config_state = st.dictionaries(st.integers(1, 6), peer_state, max_size=6)


def render(state: dict[int, tuple]) -> str:
    out = ["[Interface]", "ListenPort = 51820"]
    for i, (ips, ep, ka, psk) in sorted(state.items()):
        out += ["[Peer]", f"PublicKey = {key(i)}"]
        if ips:
            out.append("AllowedIPs = " + ", ".join(f"10.0.{j}.{i}/32" for j in sorted(ips)))
        if ep:
            out.append(f"Endpoint = {ep}")
        if ka is not None:
            out.append(f"PersistentKeepalive = {ka}")
        if psk:
            out.append(f"PresharedKey = {psk}")
    return "\n".join(out) + "\n"


def version(state: dict[int, tuple]) -> FileVersion:
    text = render(state)
    return FileVersion(
        "k",
        "/x/wg0.conf",
        "wg0",
        hashlib.sha256(text.encode()).hexdigest(),
        None,
        parse_config(text, "x", FP),
    )


@SETTINGS
@given(config_state, config_state)
def test_differ_reports_exactly_what_moved(a: dict[int, tuple], b: dict[int, tuple]) -> None:
    va, vb = version(a), version(b)
    assert diff_versions(va, va) == []
    changes = diff_versions(va, vb)
    added = {c.peer.public_key for c in changes if c.action == "peer-added" and c.peer}
    removed = {c.peer.public_key for c in changes if c.action == "peer-removed" and c.peer}
    assert added == {key(i) for i in set(b) - set(a)}
    assert removed == {key(i) for i in set(a) - set(b)}
    for i in set(a) & set(b):
        acts = {c.action for c in changes if c.peer and c.peer.public_key == key(i)}
        assert ("allowed-ips-changed" in acts) == (a[i][0] != b[i][0])
        assert ("endpoint-changed" in acts) == (a[i][1] != b[i][1])
        assert ("persistent-keepalive-changed" in acts) == (a[i][2] != b[i][2])
        assert ("preshared-key-changed" in acts) == (a[i][3] != b[i][3])
    assert (changes == []) == (render(a) == render(b))


item = st.builds(
    DriftItem,
    st.sampled_from(["peer-only-in-file", "peer-only-running"]),
    st.sampled_from(["a", "b", "c"]),
    st.just(()),
    st.just(()),
)


@SETTINGS
@given(st.lists(st.lists(item, max_size=4), max_size=12), st.sampled_from([0.0, 5.0]))
def test_drift_episodes_alternate(history: list[list[DriftItem]], grace: float) -> None:
    t = DriftTracker()
    open_: set[DriftItem] = set()
    for n, items in enumerate(history):
        detected, resolved = t.update("wg0", items, at=float(n * 3), grace_secs=grace)
        for i, _ in resolved:
            assert i in open_ and i not in items
            open_.remove(i)
        for i, _ in detected:
            assert i not in open_ and i in items
            open_.add(i)
        assert open_ <= set(items)
    restored = DriftTracker()
    restored.restore(t.export())
    assert set(restored.active.get("wg0", {})) == open_


@SETTINGS
@given(
    st.one_of(
        st.tuples(st.integers(0, 300), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)).map(
            lambda t: ".".join(map(str, t))
        ),
        st.text(alphabet="0123456789./", max_size=18),
    ),
    st.one_of(st.none(), st.integers(0, 40)),
)
def test_ipv4_fast_path_agrees_with_ipaddress(ip: str, plen: int | None) -> None:
    import ipaddress

    from wgsiem.sources.config_watch.parser import _network

    item = ip if plen is None else f"{ip}/{plen}"
    try:
        want: str | None = str(ipaddress.ip_network(item, strict=False))
    except ValueError:
        want = None
    try:
        got: str | None = _network(item)
    except ValueError:
        got = None
    assert got == want

"""wg-quick output → interface up/down/reconfigured events; key material never survives."""

from __future__ import annotations

from pathlib import Path

import pytest

from wgsiem.sources.kernel_log.records import WgQuickLine
from wgsiem.sources.kernel_log.wg_quick import REDACTED, parse_wg_quick, redact, unit_interface

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "kernel_log"
# a syntactically valid key used only as a secret here (never a real one)
SECRET = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
PUBLIC = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="

EXPECTED_ACTIONS = [
    ("interface-up", "wg0"),
    ("interface-up", "wg0"),
    ("interface-reconfigured", "wg0"),
    ("interface-reconfigured", "wg0"),
    ("wg-quick-command", "wg0"),
    ("wg-quick-command", "wg0"),
    ("wg-quick-command", "wgu"),
    ("wg-quick-command", "wg0"),
    ("interface-reconfigured", "wg0"),
    ("wg-quick-command", "wgu"),
    ("wg-quick-command", "wgu"),
    ("wg-quick-command", "wg0"),
    ("wg-quick-command", "wgu"),
    ("wg-quick-command", "wgu"),
    ("wg-quick-command", "wgu"),
    ("interface-down", "wg0"),
    ("wg-quick-command", "wgu"),
    ("wg-quick-command", "wgu"),
    ("wg-quick-command", "wgu"),
    ("wg-quick-warning", "wgu"),
    ("config-world-accessible", "wgu"),
    ("wg-quick-error", "wgu"),
]


def test_every_reference_line() -> None:
    lines = (FIXTURES / "wg_quick_unit.txt").read_text().splitlines()
    got = [parse_wg_quick(line, unit_if="wgu") for line in lines]
    assert [(g.action, g.interface) for g in got if g] == EXPECTED_ACTIONS
    assert all(g is not None and g.text == line for g, line in zip(got, lines, strict=True))


def test_command_fields() -> None:
    assert parse_wg_quick("[#] wg setconf wg0 /dev/fd/63") == WgQuickLine(
        "interface-reconfigured", "[#] wg setconf wg0 /dev/fd/63", "wg0", "wg setconf wg0 /dev/fd/63", "wg"
    )
    assert parse_wg_quick("[#] wireguard-go wg0").action == "interface-up"  # type: ignore[union-attr]
    assert parse_wg_quick("   ") is None


@pytest.mark.parametrize(
    "line",
    [
        f"[#] wg set wg0 private-key <(echo {SECRET})",
        f"[#] wg set wg0 peer {PUBLIC} preshared-key <(echo {SECRET}) allowed-ips 10.0.0.2/32",
        f"[#] echo {SECRET} | wg pubkey",
        f"[#] wg set wg0 private-key={SECRET}",
        f"PrivateKey = {SECRET}",
        f"[#] wg set wg0 private-key /etc/wireguard/{SECRET}",
    ],
)
def test_key_material_is_redacted(line: str) -> None:
    got = parse_wg_quick(line, unit_if="wg0")
    assert got is not None
    assert SECRET not in repr(got)
    assert REDACTED in got.text


def test_public_keys_after_peer_are_kept() -> None:
    text = redact(f"[#] wg set wg0 peer {PUBLIC} remove")
    assert PUBLIC in text and REDACTED not in text


def test_unit_interface() -> None:
    assert unit_interface("wg-quick@wg0.service") == "wg0"
    assert unit_interface("sshd.service") is None
    assert unit_interface(None) is None

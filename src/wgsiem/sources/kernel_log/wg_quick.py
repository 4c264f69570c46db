"""``wg-quick`` output (stderr, in the journal under ``wg-quick@<if>.service``) → :class:`WgQuickLine`.

wg-quick prints every command it runs as ``[#] <command>`` (``wireguard-tools`` ``linux.bash``), so its
unit output says when an interface came up, went down or was reconfigured, and by which unit/user.

Key material: ``wg set wg0 private-key /dev/fd/63`` names a file, but a PostUp hook can be anything,
e.g. ``wg set %i private-key <(echo <base64>)`` or ``wg set %i peer … preshared-key <(echo …)``. So the
value after ``private-key`` / ``preshared-key`` is always replaced by ``[REDACTED]`` (a ``<(…)`` process
substitution as a whole), and so is every other 44-character base64 key that does not directly follow
``peer`` (public keys of peers are not secret and are what an analyst needs).
"""

from __future__ import annotations

import re

from wgsiem.sources.kernel_log.records import WgQuickLine

__all__ = ["REDACTED", "parse_wg_quick", "redact", "unit_interface"]

REDACTED = "[REDACTED]"

_SECRET_ARG = re.compile(
    r"(?P<kw>\b(?:private-key|preshared-key|PrivateKey|PresharedKey)\b\s*=?\s*)(?P<v><\([^)]*\)|\S+)"
)
_B64_KEY = re.compile(r"(?<![A-Za-z0-9+/=])(?P<k>[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)(?![A-Za-z0-9+/=])")
_PEER_BEFORE = re.compile(r"\bpeer\s+\Z")
_LINK_ADD = re.compile(r"ip link add (?:dev )?(?P<if>\S+) type (?:wireguard|amneziawg)\b")
_USERSPACE = re.compile(r"(?:\S*/)?(?:wireguard-go|boringtun\S*|amneziawg-go) (?P<if>\S+)\s*\Z")
_LINK_DEL = re.compile(r"ip link (?:delete|del) (?:dev )?(?P<if>\S+)")
_WG_CONF = re.compile(r"(?:\S*/)?(?:wg|awg) (?P<sub>setconf|addconf|syncconf|set) (?P<if>\S+)")
_DEV = re.compile(r"\bdev (?P<if>[^\s:/]{1,15})\b")
_UNIT = re.compile(r"wg-quick@(?P<if>[^.]+)\.service\Z")


def redact(text: str) -> str:
    """``text`` with private and preshared key material replaced by ``[REDACTED]``."""
    if "key" in text.lower() or "Key" in text:
        text = _SECRET_ARG.sub(lambda m: m.group("kw") + REDACTED, text)

    def _key(m: re.Match[str]) -> str:
        return m.group("k") if _PEER_BEFORE.search(text, 0, m.start()) else REDACTED

    return _B64_KEY.sub(_key, text)


def unit_interface(unit: str | None) -> str | None:
    """``wg-quick@wg0.service`` → ``wg0``."""
    if not unit:
        return None
    m = _UNIT.search(unit)
    return m.group("if") if m else None


def parse_wg_quick(text: str, *, unit_if: str | None = None) -> WgQuickLine | None:
    """One wg-quick output line → :class:`WgQuickLine`; ``None`` for an empty line. ``unit_if`` is the
    interface of the unit that ran it (``wg-quick@wg0.service``), used when the line names none."""
    line = redact(text.rstrip("\r\n"))
    if not line.strip():
        return None
    if line.startswith("[#] "):
        cmd = line[4:]
        program = cmd.split(" ", 1)[0].rsplit("/", 1)[-1] or None
        m = _LINK_ADD.match(cmd) or _USERSPACE.match(cmd)
        if m:
            return WgQuickLine("interface-up", line, m.group("if"), cmd, program)
        m = _LINK_DEL.match(cmd)
        if m:
            return WgQuickLine("interface-down", line, m.group("if"), cmd, program)
        m = _WG_CONF.match(cmd)
        if m:
            return WgQuickLine("interface-reconfigured", line, m.group("if"), cmd, program)
        m = _DEV.search(cmd)
        return WgQuickLine("wg-quick-command", line, m.group("if") if m else unit_if, cmd, program)
    if line.startswith("[!] "):
        return WgQuickLine("wg-quick-warning", line, unit_if)
    if line.startswith("Warning: `") and line.endswith("' is world accessible"):
        return WgQuickLine("config-world-accessible", line, unit_if)
    if line.startswith("wg-quick: "):
        return WgQuickLine("wg-quick-error", line, unit_if)
    return WgQuickLine("wg-quick-output", line, unit_if)

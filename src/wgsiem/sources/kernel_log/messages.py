"""The WireGuard kernel message catalogue: one message text → a :class:`KernelMessage` (pure).

Every format string of ``drivers/net/wireguard/*.c`` (see ``docs/sources/kernel_log.md`` and the
format reference ``02_kernel_log.md``) has a pattern here. Matching is case-insensitive and a peer may
carry a quoted name, so vendor kernels that reword slightly (Keenetic: ``handshake for peer "name" (49)
(ip:port) …``) still parse. The ``amneziawg`` fork prints the same strings under its own module name.

Speed: the message is located with ``str.find`` (no regex for the ~all lines that are not WireGuard's),
then dispatched on its first word to the two or three patterns that can match it.
"""

from __future__ import annotations

import re

from wgsiem.sources.kernel_log.records import DebugPrefix, Endpoint, KernelMessage

__all__ = ["MODULES", "find_message", "parse_endpoint", "parse_message"]

MODULES = ("wireguard: ", "amneziawg: ")
RATELIMIT = "net_ratelimit: "
WARN_TEXTS = (
    "Somehow a wrong type of packet wound up in the handshake queue!",
    "Non-exhaustive parsing of packet header lead to unknown packet type!",
)

_PEER = r'peer (?:"(?P<pname>[^"]*)" \()?(?P<peer>\d+)\)?'
_EP = r" \((?P<ep>\(einval\)|[^\s()]*)\)"
_FROM = r"(?P<ep>\(einval\)|\S+)"

_V4 = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})\Z")
_V6 = re.compile(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})(?:/(\d+))?(?:%(\d+))?\Z")
_IFACE = re.compile(r"([^\s:/]{1,15}): ")
_DEBUG = re.compile(r"(?:(?:\[(?P<tid>\d+)\]|<(?P<intr>intr)>) ?)?(?:(?P<parts>[\w.]+(?::[\w.]*)*):)?\s*\Z")

_Spec = tuple[re.Pattern[str], str, str | None]  # pattern, action, direction


def _p(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.replace("{PEER}", _PEER).replace("{EP}", _EP).replace("{FROM}", _FROM), re.I)


# first word (lower case) → the patterns that can follow
_CATALOGUE: dict[str, list[_Spec]] = {
    "interface": [
        (_p(r"Interface created\Z"), "interface-created", None),
        (_p(r"Interface destroyed\Z"), "interface-destroyed", None),
    ],
    "creating": [(_p(r"Creating namespace exiting\Z"), "namespace-exiting", None)],
    "peer": [
        (_p(r"Peer (?P<peer>\d+) created\Z"), "peer-created", None),
        (_p(r"Peer (?P<peer>\d+){EP} destroyed\Z"), "peer-destroyed", None),
    ],
    "keypair": [
        (_p(r"Keypair (?P<kp>\d+) created for {PEER}\Z"), "keypair-created", None),
        (_p(r"Keypair (?P<kp>\d+) destroyed for {PEER}\Z"), "keypair-destroyed", None),
    ],
    "receiving": [
        (_p(r"Receiving handshake initiation from {PEER}{EP}\Z"), "handshake-initiation-received", "inbound"),
        (_p(r"Receiving handshake response from {PEER}{EP}\Z"), "handshake-response-received", "inbound"),
        (_p(r"Receiving keepalive packet from {PEER}{EP}\Z"), "keepalive", "inbound"),
        (_p(r"Receiving cookie response from {FROM}\Z"), "cookie-received", "inbound"),
    ],
    "invalid": [
        (_p(r"Invalid handshake initiation from {FROM}\Z"), "invalid-handshake", "inbound"),
        (_p(r"Invalid MAC of handshake, dropping packet from {FROM}\Z"), "invalid-mac", "inbound"),
        (_p(r"Invalid handshake response from {FROM}\Z"), "invalid-handshake-response", "inbound"),
        (_p(r"Invalid IP packet\Z"), "invalid-ip-packet", "outbound"),
    ],
    "packet": [
        (
            _p(r"Packet has unallowed src IP \((?P<ip>[^()\s]*)\) from {PEER}{EP}\Z"),
            "unallowed-source-ip",
            "inbound",
        ),
        (_p(r"Packet has invalid nonce (?P<nonce>\d+) \(max (?P<max>\d+)\)\Z"), "invalid-nonce", "inbound"),
        (_p(r"Packet is neither ipv4 nor ipv6 from {PEER}{EP}\Z"), "invalid-packet-protocol", "inbound"),
        (_p(r"Packet has incorrect size from {PEER}{EP}\Z"), "invalid-packet-size", "inbound"),
    ],
    "sending": [
        (_p(r"Sending handshake initiation to {PEER}{EP}\Z"), "handshake-initiation-sent", "outbound"),
        (_p(r"Sending handshake response to {PEER}{EP}\Z"), "handshake-response-sent", "outbound"),
        (_p(r"Sending keepalive packet to {PEER}{EP}\Z"), "keepalive", "outbound"),
        (_p(r"Sending cookie response for denied handshake message for {FROM}\Z"), "cookie-sent", "outbound"),
    ],
    "handshake": [
        (
            _p(
                r"Handshake for {PEER}{EP} did not complete after (?P<n>\d+) seconds, "
                r"retrying \(try (?P<try>\d+)\)\Z"
            ),
            "handshake-timeout",
            "outbound",
        ),
        (
            _p(r"Handshake for {PEER}{EP} did not complete after (?P<att>\d+) attempts, giving up\Z"),
            "handshake-given-up",
            "outbound",
        ),
    ],
    "retrying": [
        (
            _p(
                r"Retrying handshake with {PEER}{EP} because we stopped hearing back "
                r"after (?P<n>\d+) seconds\Z"
            ),
            "handshake-retry",
            "outbound",
        )
    ],
    "zeroing": [
        (
            _p(
                r"Zeroing out all keys for {PEER}{EP}, since we haven't received a new one "
                r"in (?P<n>\d+) seconds\Z"
            ),
            "keys-zeroed",
            None,
        )
    ],
    "dropping": [(_p(r"Dropping handshake packet from {FROM}\Z"), "handshake-dropped", "inbound")],
    "failed": [
        (_p(r"Failed to give packet to userspace from {PEER}{EP}\Z"), "userspace-delivery-failed", "inbound")
    ],
    "no": [
        (_p(r"No route to (?P<ep>\(einval\)|[^\s,]+), error (?P<errno>-?\d+)\Z"), "no-route", "outbound"),
        (_p(r"No peer has allowed IPs matching (?P<ip>\S+)\Z"), "no-allowed-ips-match", "outbound"),
        (
            _p(r"No valid endpoint has been configured or discovered for {PEER}\Z"),
            "no-endpoint",
            "outbound",
        ),
    ],
    "could": [
        (_p(r"Could not create IPv(?P<af>[46]) socket\Z"), "socket-create-failed", None),
        (_p(r"Could not decrypt invalid cookie response\Z"), "invalid-cookie", "inbound"),
    ],
}

_MODULE_LEVEL: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"(?:WireGuard|AmneziaWG) (?P<v>\S+) loaded\. See \S+ for information\.\Z", re.I),
        "module-loaded",
    ),
    (re.compile(r"Copyright \(C\) .*\Z", re.I), "module-copyright"),
]
_SUPPRESSED = re.compile(r"(\d+) callbacks suppressed\Z")


CACHE_MAX = 65536
_EP_CACHE: dict[str, Endpoint] = {}
_BODY_CACHE: dict[tuple[str, str], KernelMessage] = {}


def parse_endpoint(text: str) -> Endpoint:
    """``%pISpfsc`` output → :class:`Endpoint` (unparseable text is kept, with no ip/port).

    Memoized: a peer's endpoint repeats in every message about it."""
    ep = _EP_CACHE.get(text)
    if ep is None:
        if len(_EP_CACHE) >= CACHE_MAX:
            _EP_CACHE.clear()
        ep = _EP_CACHE[text] = _parse_endpoint(text)
    return ep


def _parse_endpoint(text: str) -> Endpoint:
    if text == "(einval)":
        return Endpoint(text, unset=True)
    m = _V4.match(text)
    if m:
        ip, port = m.group(1, 2)
        a, b, c, d = ip.split(".")
        if int(port) < 65536 and int(a) < 256 and int(b) < 256 and int(c) < 256 and int(d) < 256:
            return Endpoint(text, ip, int(port))
        return Endpoint(text)
    m = _V6.match(text)
    if m and int(m.group(2)) < 65536:
        flow, scope = m.group(3), m.group(4)
        return Endpoint(
            text,
            m.group(1).lower(),
            int(m.group(2)),
            int(flow) if flow is not None else None,
            int(scope) if scope is not None else None,
        )
    return Endpoint(text)


def _int(v: str | None) -> int | None:
    return int(v) if v is not None else None


def _debug_prefix(prefix: str) -> DebugPrefix | None:
    """The text before ``wireguard: `` (uptime already removed): dynamic debug's decorations."""
    prefix = prefix.strip()
    if not prefix:
        return None
    m = _DEBUG.match(prefix + ":") if not prefix.endswith(":") else _DEBUG.match(prefix)
    if m is None:
        return None
    thread = m.group("tid") or m.group("intr")
    parts = [p for p in (m.group("parts") or "").split(":") if p]
    module = function = None
    line = None
    if parts and parts[-1].isascii() and parts[-1].isdigit():
        line = int(parts.pop())
    if len(parts) >= 2:
        module, function = parts[-2], parts[-1]
    elif parts:
        function = parts[0]
    return DebugPrefix(thread, module, function, line)


def _message(module: str, body: str, debug: DebugPrefix | None) -> KernelMessage:
    """Memoized on the message text (records are immutable): keepalives, handshakes and timeouts of
    the same peer repeat word for word; keypair ids and nonces do not, and just miss."""
    if debug is not None:
        return _build(module, body, debug)
    key = (module, body)
    msg = _BODY_CACHE.get(key)
    if msg is None:
        if len(_BODY_CACHE) >= CACHE_MAX:
            _BODY_CACHE.clear()
        msg = _BODY_CACHE[key] = _build(module, body, None)
    return msg


def _build(module: str, body: str, debug: DebugPrefix | None) -> KernelMessage:
    m = _IFACE.match(body)
    if m is None:
        for pat, action in _MODULE_LEVEL:
            mm = pat.match(body)
            if mm is not None:
                version = mm.groupdict().get("v")
                return KernelMessage(action, body, module, version=version, debug=debug)
        return KernelMessage("unrecognized", body, module, debug=debug)
    iface = m.group(1)
    msg = body[m.end() :]
    space = msg.find(" ")
    first = (msg[:space] if space > 0 else msg).lower()
    for pat, action, direction in _CATALOGUE.get(first, ()):
        mm = pat.match(msg)
        if mm is None:
            continue
        g = mm.groupdict()
        ep = g.get("ep")
        peer = g.get("peer")
        kp = g.get("kp")
        n = g.get("n")
        return KernelMessage(
            action,
            body,
            module,
            iface,
            int(peer) if peer is not None else None,
            g.get("pname"),
            parse_endpoint(ep) if ep is not None else None,
            int(kp) if kp is not None else None,
            g.get("ip"),
            _int(g.get("nonce")),
            _int(g.get("max")),
            _int(g.get("att")),
            _int(g.get("try")),
            int(n) if n is not None else None,
            _int(g.get("errno")),
            None,
            _int(g.get("af")),
            None,
            direction,
            debug,
        )
    return KernelMessage("unrecognized", body, module, iface, debug=debug)


def find_message(text: str) -> tuple[str, int] | None:
    """Where a WireGuard/ratelimit/WARN message starts in ``text``: (marker, index), or ``None``."""
    for marker in MODULES:
        i = text.find(marker)
        if i >= 0:
            return marker, i
    i = text.find(RATELIMIT)
    if i >= 0:
        return RATELIMIT, i
    for w in WARN_TEXTS:
        i = text.find(w)
        if i >= 0:
            return w, i
    return None


def parse_message(text: str) -> KernelMessage | None:
    """A kernel message (after any timestamp) → :class:`KernelMessage`, or ``None`` when it is not
    WireGuard's. ``text`` may start with the kernel uptime ``[  265.694319]`` and dynamic debug's
    ``[pid] module:function:line:`` decorations."""
    found = find_message(text)
    if found is None:
        return None
    marker, i = found
    debug = None
    if i:
        prefix = text[:i]
        if prefix.startswith("["):
            end = prefix.find("]")
            if end > 0 and _is_uptime(prefix[1:end]):
                prefix = prefix[end + 1 :]
        debug = _debug_prefix(prefix)
    if marker == RATELIMIT:
        m = _SUPPRESSED.match(text, i + len(RATELIMIT))
        if m is None:
            return None
        return KernelMessage(
            "messages-suppressed", text[i:], "net_ratelimit", suppressed=int(m.group(1)), debug=debug
        )
    if marker in WARN_TEXTS:
        return KernelMessage("kernel-warning", marker, "wireguard", debug=debug)
    body = text[i + len(marker) :]
    if body.endswith(("\n", "\r")):
        body = body.rstrip("\r\n")
    return _message(marker[:-2], body, debug)


def _is_uptime(s: str) -> bool:
    s = s.strip()
    head, dot, tail = s.partition(".")
    return bool(dot) and head.isdigit() and tail.isdigit()

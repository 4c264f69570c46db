"""Pure privacy operations: pseudonyms, IP truncation, and applying a field policy to one document.

* **pseudonymize**: ``ps:<key id>:<hex>`` — HMAC-SHA256 of the value under the active key, truncated.
  Stable for a key (joins and counts still work), different under another key, irreversible without
  it; the key id says which key a holder needs for ``wgsiem privacy reveal``. No field name goes into
  the HMAC, so ``alice`` in ``user.name`` and in ``related.user`` get the same pseudonym.
* **mask**: an address keeps its leading ``/24`` (IPv4) or ``/48`` (IPv6) bits; ``ip:port`` and
  ``[v6]:port`` keep their port. A value that is no address is dropped — never passed through.
* **drop**: the field is removed.

Every original value a policy touched is then looked for in the rest of the document (``scrub``):
exact values — also inside lists such as ``related.user``/``related.ip`` — get the same replacement (a
dropped one is removed), and with ``substring`` any longer text containing it as a whole token (in a
``message``, an endpoint ``ip:port``, a device name ``alice-laptop``) has it replaced too (a dropped
one by ``[redacted]``). So no original token survives anywhere in the event. ``event.id``, ``event``
dates and ``@timestamp`` are never rewritten.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["REDACTED", "Applied", "apply_policy", "mask_ip", "pseudonym", "scrub", "scrub_text"]

REDACTED = "[redacted]"
_KEEP_EVENT = frozenset({"id", "created", "start", "end", "ingested"})
PREFIX = "ps:"


@functools.lru_cache(maxsize=65_536)
def _token(original: str) -> re.Pattern[str]:
    """``original`` as a whole token: not touching a letter or digit on either side, so masking
    ``10.222.0.1`` leaves ``10.222.0.11`` alone and ``alice`` is replaced in ``alice-laptop`` but not
    in ``malice``. One small pattern per original, cached (a pattern per event's set would compile on
    every new combination)."""
    return re.compile(r"(?<![0-9A-Za-z])" + re.escape(original) + r"(?![0-9A-Za-z])")


def pseudonym(hasher: Any, key_id: str, value: str, hex_chars: int) -> str:
    """``ps:<key id>:<hex>`` from a keyed HMAC state (``KeyRing.active.hasher()``)."""
    h = hasher.copy()
    h.update(value.encode("utf-8"))
    return f"{PREFIX}{key_id}:{h.hexdigest()[:hex_chars]}"


def _mask_addr(text: str, v4: int, v6: int) -> str | None:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    plen = v4 if addr.version == 4 else v6
    net = ipaddress.ip_network(f"{addr}/{plen}", strict=False)
    return str(net.network_address)


def mask_ip(value: str, v4: int = 24, v6: int = 48) -> str | None:
    """The truncated address (``ip``, ``ip:port``, ``[v6]:port``, ``v6%zone``); ``None`` if no address."""
    if value.startswith("["):
        close = value.find("]")
        if close > 0:
            host = value[1:close].split("%", 1)[0]
            masked = _mask_addr(host, v4, v6)
            return None if masked is None else f"[{masked}]{value[close + 1 :]}"
        return None
    masked = _mask_addr(value.split("%", 1)[0], v4, v6)
    if masked is not None:
        return masked
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        masked = _mask_addr(host, v4, v6)
        if masked is not None:
            return f"{masked}:{port}"
    return None


class Applied:
    """What one event's policy did: original → replacement (``None``: dropped), and which fields."""

    __slots__ = ("dropped", "masked", "pseudonymized", "replaced", "unmaskable")

    def __init__(self) -> None:
        self.replaced: dict[str, str | None] = {}
        self.pseudonymized: list[str] = []
        self.masked: list[str] = []
        self.dropped: list[str] = []
        self.unmaskable = 0  # masked values that held no address (dropped instead)


def _originals(value: Any) -> list[str]:
    vals = value if type(value) is list else [value]
    return [v if type(v) is str else str(v) for v in vals if v is not None and type(v) is not dict]


def apply_policy(
    doc: dict[str, Any],
    policies: list[tuple[tuple[str, ...], str, str]],
    pseudo: Callable[[str], str],
    mask: Callable[[str], str | None],
) -> Applied:
    """Apply ``(path parts, dotted path, action)`` policies to ``doc`` in place (no scrubbing)."""
    out = Applied()
    replaced = out.replaced
    for parts, dotted, action in policies:
        n = len(parts) - 1
        if n == 1:  # "user.name", "source.ip": the usual depth, walked without a loop
            parent: Any = doc.get(parts[0])
            if type(parent) is not dict:
                continue
        else:
            parent = doc
            i = 0
            while i < n:
                parent = parent.get(parts[i])
                if type(parent) is not dict:
                    break
                i += 1
            if i < n:
                continue
        leaf = parts[n]
        value = parent.get(leaf)
        if value is None:
            continue
        if action == "drop":
            del parent[leaf]
            for o in _originals(value):
                replaced[o] = None
            out.dropped.append(dotted)
            continue
        fn = pseudo if action == "pseudonymize" else mask
        tv = type(value)
        if tv is list:
            new_list: list[Any] = []
            for item in value:
                if item is None or type(item) is dict or type(item) is list:
                    continue  # structures have no single original to replace; never passed through
                orig = item if type(item) is str else str(item)
                new = fn(orig)
                replaced[orig] = new
                if new is None:
                    out.unmaskable += 1
                elif new not in new_list:
                    new_list.append(new)
            parent[leaf] = new_list
        elif tv is dict:
            del parent[leaf]  # an object under a scalar policy: drop it rather than guess
            out.dropped.append(dotted)
            continue
        else:
            orig = value if tv is str else str(value)
            new = fn(orig)
            replaced[orig] = new
            if new is None:
                del parent[leaf]
                out.unmaskable += 1
                out.dropped.append(dotted)
                continue
            parent[leaf] = new
        (out.pseudonymized if action == "pseudonymize" else out.masked).append(dotted)
    return out


def scrub(doc: dict[str, Any], applied: Applied, *, substring: bool, min_chars: int, skip: str) -> None:
    """Replace the originals of ``applied`` wherever else they occur in ``doc`` (see module docstring)."""
    replaced = applied.replaced
    replacements = {v for v in replaced.values() if v is not None}
    long = sorted((o for o in replaced if len(o) >= min_chars), key=len, reverse=True) if substring else []
    shortest = len(long[-1]) if long else 0

    def fix(text: str) -> str | None:
        """``text`` with every original token replaced; ``None`` if it held none."""
        cur = text
        for o in long:
            if o in cur:
                r = replaced[o]
                rep = REDACTED if r is None else r  # pseudonyms and addresses hold no backslash
                cur = _token(o).sub(rep, cur)
        return None if cur == text else cur

    wg = doc.get("wireguard")
    event = doc.get("event")
    stack: list[dict[str, Any]] = [doc]
    while stack:
        node = stack.pop()
        for k, v in list(node.items()):
            tv = type(v)
            if tv is str:
                if v in replaced:
                    if v in replacements:
                        continue
                    r = replaced[v]
                    if r is None:
                        del node[k]
                    else:
                        node[k] = r
                elif len(v) >= shortest > 0:
                    if (node is doc and k == "@timestamp") or (node is event and k in _KEEP_EVENT):
                        continue  # ids and dates identify the record, never a person
                    fixed = fix(v)
                    if fixed is not None:
                        node[k] = fixed
            elif tv is dict:
                if not (node is wg and k == skip):
                    stack.append(v)
            elif tv is list:
                changed = False
                new: list[Any] = []
                for item in v:
                    if type(item) is str:
                        if item in replaced and item not in replacements:
                            item = replaced[item]
                            changed = True
                            if item is None:
                                continue
                        elif len(item) >= shortest > 0:
                            fixed = fix(item)
                            if fixed is not None:
                                item = fixed
                                changed = True
                        if item in new:
                            changed = True
                            continue
                    elif type(item) is dict:
                        stack.append(item)
                    new.append(item)
                if changed:
                    node[k] = new


_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _token_replacer(text: str) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` replacement: ``text`` verbatim, unless the match continues a letter or digit on
    its left (then the match is kept: ``10.222.0.1`` is not a token of ``110.222.0.1``). The check is
    here, not a lookbehind in the pattern, so the pattern starts with a literal and ``re`` can skip
    ahead to candidates at C speed."""

    def repl(m: re.Match[str]) -> str:
        i = m.start()
        return m.group(0) if i and m.string[i - 1].isalnum() else text

    return repl


@functools.lru_cache(maxsize=65_536)
def _json_forms(original: str) -> tuple[str, re.Pattern[str] | None]:
    """How ``original`` looks inside serialized JSON (escaped, without quotes), and the pattern of it
    as a token — ``None`` when it reads as a JSON number, which text replacement could hit outside a
    string: such an original is only replaced as a whole quoted value."""
    form = orjson.dumps(original).decode()[1:-1]
    if _NUMBER.fullmatch(original):
        return form, None
    return form, re.compile(re.escape(form) + r"(?![0-9A-Za-z])")


def scrub_text(doc: dict[str, Any], applied: Applied, *, substring: bool, min_chars: int) -> bool:
    """:func:`scrub` done on the serialized document — C-speed search instead of a Python walk.

    Returns ``False`` (nothing changed) when a *dropped* original occurs elsewhere: removing values
    from lists needs the structure, so the caller falls back to :func:`scrub`.
    """
    replaced = applied.replaced
    related = doc.get("related")
    if type(related) is dict:  # the usual home of copies: exact entries, fixed without serializing
        for k, v in related.items():
            if type(v) is not list:
                continue
            out: list[Any] = []
            changed = False
            for item in v:
                if type(item) is str and item in replaced:
                    changed = True
                    item = replaced[item]
                    if item is None:
                        continue
                if item in out:
                    changed = True
                    continue
                out.append(item)
            if changed:
                related[k] = out
    text = orjson.dumps(doc).decode()
    present: list[tuple[str, str, re.Pattern[str] | None, str | None]] = []
    for orig, rep in replaced.items():
        if rep == orig:  # an address that already was its network
            continue
        form, rx = _json_forms(orig)
        if form in text:
            if rep is None:
                return False
            present.append((orig, form, rx if substring and len(orig) >= min_chars else None, rep))
    if not present:
        return True
    keep_ts = doc.get("@timestamp")
    event = doc.get("event")
    keep_event = {k: event[k] for k in _KEEP_EVENT if k in event} if type(event) is dict else {}
    present.sort(key=lambda p: len(p[0]), reverse=True)
    for _orig, form, rx, rep in present:
        assert rep is not None
        rep_form = orjson.dumps(rep).decode()[1:-1]
        text = text.replace(f'"{form}"', f'"{rep_form}"')  # whole values: the common case, fastest
        if rx is not None and form in text:
            text = rx.sub(_token_replacer(rep_form), text)
    new = orjson.loads(text)
    if keep_ts is not None:
        new["@timestamp"] = keep_ts
    if keep_event and type(new.get("event")) is dict:
        new["event"].update(keep_event)
    related = new.get("related")
    if type(related) is dict:
        for k, v in related.items():
            if type(v) is list and len(v) > 1:
                related[k] = list(dict.fromkeys(v)) if all(type(x) is str for x in v) else v
    doc.clear()
    doc.update(new)
    return True

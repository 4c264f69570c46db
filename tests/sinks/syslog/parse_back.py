"""Independent readers of CEF and LEEF text, for checking what a receiver got field by field.

Written from the standard's wording (``shared/reference/formats/09_cef_leef_syslog.md``), not from
the encoder, so an escaping mistake in one does not cancel out in the other.
"""

from __future__ import annotations

import re

_CEF_KEY = re.compile(r"(?:^| )([A-Za-z0-9_]+)=")


def parse_cef(text: str) -> tuple[list[str], dict[str, str]]:
    """``CEF:0|…`` → (the 7 header fields after ``CEF:0``, unescaped; the extension as a dict)."""
    assert text.startswith("CEF:"), text
    header: list[str] = []
    cur, i = "", 0
    while len(header) < 7:
        c = text[i]
        if c == "\\" and text[i + 1] in "\\|":
            cur += text[i + 1]
            i += 2
            continue
        if c == "|":
            header.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    ext_text = text[i:]
    # a key starts after a space not escaped … keys are found where an unescaped '=' follows a word
    starts = []
    for m in _CEF_KEY.finditer(ext_text):
        eq = m.end(1)
        backslashes = len(ext_text[:eq]) - len(ext_text[:eq].rstrip("\\"))
        if backslashes % 2 == 0:
            starts.append((m.start(1), m.group(1), m.end()))
    ext: dict[str, str] = {}
    for n, (_, key, value_start) in enumerate(starts):
        end = starts[n + 1][0] - 1 if n + 1 < len(starts) else len(ext_text)
        raw = ext_text[value_start:end]
        ext[key] = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), raw)
    return [header[0][4:], *header[1:]], ext


def parse_leef(text: str) -> tuple[list[str], dict[str, str]]:
    """``LEEF:2.0|V|P|Ver|EventID|Delim|attrs`` → (header fields incl. version, attributes)."""
    parts = text.split("|", 6)
    assert parts[0] == "LEEF:2.0", text
    delim_field = parts[5]
    delim = delim_field if len(delim_field) == 1 else chr(int(delim_field.lstrip("0").lstrip("xX"), 16))
    attrs = {}
    for pair in parts[6].split(delim):
        key, _, value = pair.partition("=")
        attrs[key] = value
    return parts[:6], attrs

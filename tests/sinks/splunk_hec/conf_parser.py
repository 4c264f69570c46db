"""A strict parser of Splunk's .conf syntax, for validating the exported app.

Splunk's rules ("About configuration files", "Configuration file structure"): ``[stanza]`` headers;
``key = value`` settings (whitespace around ``=`` optional); a line ending in a backslash continues on
the next one; ``#`` starts a comment line; settings before the first stanza belong to ``[default]``.
Stricter than Splunk (which warns and goes on): any other line, a key or stanza given twice, or a
continuation at the end of the file is an error, reported with its line number. PyPI's
``addonfactory-splunk-conf-parser-lib`` is a ``configparser`` subclass that accepts what Splunk
accepts; here the point is to fail on anything sloppy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["ConfError", "ConfFile", "parse_conf"]

_STANZA = re.compile(r"^\[(?P<name>[^\]\n]*(?:\][^\]\n]*)*)\]\s*$")
_SETTING = re.compile(r"^(?P<key>[A-Za-z0-9_][A-Za-z0-9_.:\-]*)\s*=\s?(?P<value>.*)$", re.DOTALL)


class ConfError(ValueError):
    def __init__(self, file: str, line: int, what: str) -> None:
        super().__init__(f"{file}:{line}: {what}")
        self.file, self.line, self.what = file, line, what


@dataclass
class ConfFile:
    name: str
    stanzas: dict[str, dict[str, str]] = field(default_factory=dict)
    lines: dict[tuple[str, str], int] = field(default_factory=dict)
    """(stanza, key) → 1-based line of the setting."""


def parse_conf(text: str, name: str = "<conf>") -> ConfFile:
    out = ConfFile(name)
    current = "default"
    raw = text.split("\n")
    i = 0
    while i < len(raw):
        start = i + 1
        line = raw[i]
        while line.endswith("\\"):
            i += 1
            if i >= len(raw) or (i == len(raw) - 1 and raw[i] == ""):
                raise ConfError(name, start, "continuation backslash on the last line")
            line = line[:-1] + "\n" + raw[i]
        i += 1
        if not line.strip():
            continue
        if line.startswith("#"):
            continue
        if line[0].isspace():
            raise ConfError(name, start, f"line starts with whitespace: {line!r}")
        m = _STANZA.match(line)
        if m:
            current = m.group("name")
            if current in out.stanzas:
                raise ConfError(name, start, f"stanza [{current}] given twice")
            out.stanzas[current] = {}
            continue
        m = _SETTING.match(line)
        if not m:
            raise ConfError(name, start, f"neither a stanza, a setting nor a comment: {line!r}")
        key, value = m.group("key"), m.group("value").rstrip()
        settings = out.stanzas.setdefault(current, {})
        if key in settings:
            raise ConfError(name, start, f"[{current}] {key} given twice")
        settings[key] = value
        out.lines[(current, key)] = start
    return out

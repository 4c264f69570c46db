"""A parser for the subset of the Logstash config grammar the content pack uses (no logstash here).

From Logstash's "Structure of a pipeline" / "Value types" docs: sections ``input``/``filter``/``output``,
each a list of plugins ``name { setting => value ... }``; values are double- or single-quoted strings,
numbers, barewords, booleans, arrays ``[v, v]`` and hashes ``{ "k" => v }``; ``#`` starts a comment.
Conditionals (``if``/``else``) are not part of the subset and are refused.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<comment>\#[^\n]*)
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<arrow>=>)
      | (?P<punct>[{}\[\],])
      | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
      | (?P<bare>[A-Za-z_@][\w@.\-]*)
    )""",
    re.VERBOSE,
)


class LogstashSyntaxError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            line = text.count("\n", 0, pos) + 1
            raise LogstashSyntaxError(f"line {line}: unexpected {text[pos : pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "comment":
            out.append((kind, m.group(kind)))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind: str | None = None, value: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (kind and tok[0] != kind) or (value and tok[1] != value):
            raise LogstashSyntaxError(f"expected {value or kind}, got {tok}")
        self.i += 1
        return tok[1]

    def value(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise LogstashSyntaxError("value expected")
        kind, text = tok
        if kind == "string":
            self.i += 1
            return text[1:-1]
        if kind == "number":
            self.i += 1
            return float(text) if "." in text else int(text)
        if kind == "bare":
            self.i += 1
            return {"true": True, "false": False}.get(text, text)
        if text == "[":
            self.i += 1
            items = []
            while self.peek() != ("punct", "]"):
                items.append(self.value())
                if self.peek() == ("punct", ","):
                    self.i += 1
            self.take("punct", "]")
            return items
        if text == "{":
            self.i += 1
            out = {}
            while self.peek() != ("punct", "}"):
                key = self.value()
                self.take("arrow")
                out[str(key)] = self.value()
            self.take("punct", "}")
            return out
        raise LogstashSyntaxError(f"unexpected {text!r}")

    def plugin(self) -> tuple[str, dict[str, Any]]:
        name = self.take("bare")
        if name in ("if", "else"):
            raise LogstashSyntaxError("conditionals are outside the modelled subset")
        self.take("punct", "{")
        settings: dict[str, Any] = {}
        while self.peek() != ("punct", "}"):
            key = self.take("bare")
            self.take("arrow")
            if key in settings:
                raise LogstashSyntaxError(f"{name}: duplicate setting {key}")
            settings[key] = self.value()
        self.take("punct", "}")
        return name, settings

    def config(self) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        sections: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        while self.peek() is not None:
            section = self.take("bare")
            if section not in ("input", "filter", "output"):
                raise LogstashSyntaxError(f"unknown section {section}")
            self.take("punct", "{")
            plugins = sections.setdefault(section, [])
            while self.peek() != ("punct", "}"):
                plugins.append(self.plugin())
            self.take("punct", "}")
        return sections


def parse(text: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """``{section: [(plugin, settings), ...]}`` or :class:`LogstashSyntaxError`."""
    return _Parser(text).config()

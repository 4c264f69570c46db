"""One exception hierarchy, each error carrying where it happened and how to fix it.

The CLI prints ``error: <what> in <file>:<line>:<col> — <how to fix>`` (pySigma / detection-rules
style); ``--debug`` adds the traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "Location",
    "ParseError",
    "SourceError",
    "StoreError",
    "WgsiemError",
]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem is: a file (or stream name), a 1-based line and column, a byte offset."""

    file: str
    line: int | None = None
    column: int | None = None
    offset: int | None = None

    def __str__(self) -> str:
        out = self.file
        if self.line is not None:
            out += f":{self.line}"
            if self.column is not None:
                out += f":{self.column}"
        elif self.offset is not None:
            out += f"@{self.offset}"
        return out


class WgsiemError(Exception):
    """Base of every error wgsiem raises on purpose."""

    def __init__(self, what: str, *, location: Location | None = None, fix: str | None = None) -> None:
        self.what = what
        self.location = location
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        text = self.what
        if self.location is not None:
            text += f" in {self.location}"
        if self.fix:
            text += f" — {self.fix}"
        return text


class ConfigError(WgsiemError):
    """The configuration is invalid; ``problems`` holds every problem found, not only the first."""

    def __init__(
        self,
        what: str,
        *,
        location: Location | None = None,
        fix: str | None = None,
        problems: list[WgsiemError] | None = None,
    ) -> None:
        self.problems = problems or []
        super().__init__(what, location=location, fix=fix)

    def render(self) -> str:
        if not self.problems:
            return super().render()
        return "\n".join(p.render() for p in self.problems)


class ParseError(WgsiemError):
    """A record could not be parsed; the parser reports where and skips it."""


class SourceError(WgsiemError):
    """A source could not read its input (socket gone, permission denied, tool missing)."""


class StoreError(WgsiemError):
    """The embedded store could not be opened or written."""

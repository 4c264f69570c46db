"""Rows of an inventory file (YAML or CSV), each with the line it came from.

Shared by the asset and identity inventories: both report a bad row as ``file:line`` and keep the
others. A row is a plain dict; a row that cannot be read at all is ``{"__bad__": why}``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import yaml

from wgsiem.errors import Location, ParseError

__all__ = ["Row", "csv_rows", "load_yaml", "mapping_rows"]

Row = tuple[dict[str, Any], Location]


class _LineLoader(yaml.SafeLoader):
    """A safe loader that records the 1-based line of every mapping under ``__line__``."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out = dict(loader.construct_pairs(node, deep=True))
    out["__line__"] = node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str, file: str) -> Any:
    """The YAML document, every mapping carrying ``__line__``; a syntax error is a located ParseError."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = Location(file, mark.line + 1, mark.column + 1) if mark is not None else Location(file)
        raise ParseError(
            f"not valid YAML ({getattr(exc, 'problem', None) or 'syntax error'})",
            location=loc,
            fix="fix the YAML syntax",
        ) from None


def mapping_rows(items: list[Any], file: str) -> list[Row]:
    rows: list[Row] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            rows.append(({"__bad__": f"entry {i + 1} is not a mapping"}, Location(file)))
            continue
        line = item.pop("__line__", None)
        rows.append((item, Location(file, line)))
    return rows


def csv_rows(
    text: str, file: str, check_header: Callable[[list[str], Location], None], *, strip: bool = True
) -> list[Row]:
    """Rows keyed by the lower-cased header; blank and ``#`` lines skipped; ``check_header`` raises
    a ParseError for a header the inventory cannot use."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[Row] = []
    while True:
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # one malformed line; the reader goes on with the next
            rows.append(({"__bad__": f"not a CSV row ({exc})"}, Location(file, reader.line_num)))
            continue
        line = reader.line_num
        if not rec or all(not c.strip() for c in rec) or rec[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [c.strip().lower() for c in rec]
            check_header(header, Location(file, line))
            continue
        if len(rec) > len(header):
            rows.append(({"__bad__": f"{len(rec)} values for {len(header)} columns"}, Location(file, line)))
            continue
        cells = [c.strip() for c in rec] if strip else rec
        rows.append((dict(zip(header, cells, strict=False)), Location(file, line)))
    return rows

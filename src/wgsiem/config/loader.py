"""Load the YAML file into :class:`Config`, reporting every problem with file:line:col and a fix.

PyYAML's composer keeps each node's position; pydantic's error ``loc`` path is walked through the node
tree to find the line of the offending key or value.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from wgsiem.config.model import SINK_CONFIGS, SOURCE_CONFIGS, TRANSFORM_CONFIGS, Config
from wgsiem.errors import ConfigError, Location, WgsiemError

__all__ = ["compose_yaml", "load_config", "load_config_text", "node_for", "node_location"]


def node_for(root: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """The deepest node of ``root`` on the path ``loc`` (a pydantic error location)."""
    node = root
    for step in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(step):
                    node = v
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            return node
    return node


def node_location(node: yaml.Node | None, filename: str) -> Location:
    mark = node.start_mark if node is not None else None
    return Location(filename, mark.line + 1, mark.column + 1) if mark else Location(filename)


def compose_yaml(text: str, filename: str) -> tuple[yaml.Node | None, Any]:
    """``(node tree, data)`` of ``text``, or a :class:`ConfigError` at the syntax error's line."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}",
            location=Location(filename, mark.line + 1, mark.column + 1) if mark else Location(filename),
            fix="fix the YAML syntax (indentation, a missing ':' or an unclosed quote)",
        ) from exc


def _key_node(root: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    parent = node_for(root, loc[:-1])
    if isinstance(parent, yaml.MappingNode):
        for k, _v in parent.value:
            if k.value == str(loc[-1]):
                return k
    return parent


def _known_fields(loc: tuple[Any, ...], data: Any) -> list[str]:
    """Field names allowed at the parent of ``loc`` (for "did you mean" hints)."""
    parent = loc[:-1]
    model: type[BaseModel] | None = Config
    rest = parent
    if parent[:1] in (("sources",), ("sinks",), ("transforms",)) and len(parent) >= 2:
        comp = data.get(parent[0], {}).get(parent[1]) if isinstance(data, dict) else None
        kind = comp.get("type") if isinstance(comp, dict) else None
        model = _variant(Config, str(kind)) if kind else None
        rest = parent[2:]
    for step in rest:
        if model is None or str(step) not in model.model_fields:
            return []
        ann = model.model_fields[str(step)].annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return list(model.model_fields) if model is not None else []


def _variant(_parent: type[BaseModel], type_name: str) -> type[BaseModel] | None:
    from wgsiem.config.model import SINK_CONFIGS, SOURCE_CONFIGS, TRANSFORM_CONFIGS

    for m in (*SOURCE_CONFIGS, *TRANSFORM_CONFIGS, *SINK_CONFIGS):
        ann = m.model_fields["type"].annotation
        if type_name in getattr(ann, "__args__", ()):
            return m
    return None


def load_config_text(text: str, filename: str = "<config>") -> Config:
    root, data = compose_yaml(text, filename)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            "the configuration must be a mapping",
            location=Location(filename, 1, 1),
            fix="start the file with keys such as `sources:` and `sinks:`",
        )
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems: list[WgsiemError] = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            # discriminated unions add the variant tag to the path: drop it for the node walk
            walk = _strip_variant_tag(loc, data)
            path = ".".join(str(s) for s in walk) or "(top level)"
            etype = err["type"]
            if etype == "extra_forbidden":
                node = _key_node(root, walk)
                known = _known_fields(walk, data)
                close = difflib.get_close_matches(str(walk[-1]), known, n=1)
                fix = f"did you mean `{close[0]}`?" if close else "remove it"
                if known:
                    fix += f" (allowed here: {', '.join(known)})"
                what = f"unknown key `{path}`"
            elif etype == "union_tag_invalid" or etype == "union_tag_not_found":
                node = node_for(root, walk)
                what = f"`{path}`: {err['msg']}"
                fix = f"set `type:` to one of: {_type_names(walk)}"
            elif etype == "missing":
                node = node_for(root, walk[:-1])
                what = f"missing required key `{path}`"
                fix = f"add `{walk[-1]}:`"
            else:
                node = node_for(root, walk)
                what = f"`{path}`: {err['msg']}"
                fix = "see docs/configuration.md for the allowed values"
            problems.append(ConfigError(what, location=node_location(node, filename), fix=fix))
        raise ConfigError(f"{len(problems)} problem(s) in {filename}", problems=problems) from exc


_SECTIONS = ("sources", "sinks", "transforms")


def _strip_variant_tag(loc: tuple[Any, ...], data: dict[str, Any]) -> tuple[Any, ...]:
    """``sinks.<id>.<type>.<field>`` → ``sinks.<id>.<field>``: a discriminated union puts the variant's
    tag into the error path, which is not a key of the file."""
    if len(loc) > 2 and loc[0] in _SECTIONS:
        section = data.get(loc[0])
        comp = section.get(loc[1]) if isinstance(section, dict) else None
        if isinstance(comp, dict) and loc[2] == comp.get("type"):
            return (*loc[:2], *loc[3:])
    return loc


def _type_names(walk: tuple[Any, ...]) -> str:
    configs = {"sources": SOURCE_CONFIGS, "sinks": SINK_CONFIGS, "transforms": TRANSFORM_CONFIGS}
    section = walk[0] if walk and walk[0] in configs else None
    groups = [section] if section else list(configs)
    parts = []
    for g in groups:
        names = ", ".join(c.model_fields["type"].annotation.__args__[0] for c in configs[g])  # type: ignore[union-attr]
        parts.append(f"{names} ({g})")
    return "; ".join(parts)


def load_config(path: str | Path | None) -> Config:
    """Load ``path``; ``None`` gives the defaults (monitor every local WireGuard interface)."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read configuration: {exc.strerror}",
            location=Location(str(p)),
            fix="check the path given to --config",
        ) from exc
    return load_config_text(text, str(p))

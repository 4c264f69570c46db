"""Playbooks: typed YAML files saying which alerts trigger which ordered actions, at which tier.

A playbook is validated with pydantic and every problem is reported at its file:line:col with a fix,
like the main configuration (the YAML node tree keeps positions; pydantic's error path is walked
through it). Loading never imports the action classes: whether an action name exists is checked
against :data:`~wgsiem.respond.actions.base.ACTION_CLASSES`, so a playbook can be linted on a host
where an action's dependencies are missing.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wgsiem.config.loader import compose_yaml, node_for, node_location
from wgsiem.errors import ConfigError, Location, WgsiemError

from .actions.base import ACTION_CLASSES

__all__ = [
    "Playbook",
    "Step",
    "Trigger",
    "builtin_playbook_dir",
    "load_playbook",
    "load_playbook_text",
    "load_playbooks",
]

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class Trigger(BaseModel):
    """Which alerts start the playbook. An alert whose rule names this playbook (``wgsiem.playbook``)
    always matches; ``rules`` adds rules by id or name; severity and entity narrow both."""

    model_config = _FROZEN

    rules: list[str] = Field(default_factory=list, description="rule ids or names (besides those naming it)")
    min_severity: int = Field(0, ge=0, le=100, description="lowest event.severity of the alert")
    entity: list[str] = Field(
        default_factory=list, description="entity fields accepted (e.g. source.ip); empty: any"
    )


class Step(BaseModel):
    model_config = _FROZEN

    action: str = Field(description="an action name (block_endpoint, revoke_peer, ...)")
    params: dict[str, Any] = Field(default_factory=dict)
    on_failure: Literal["stop", "continue", "rollback"] = "stop"
    retries: int = Field(1, ge=0, le=5, description="retries of a failed apply before on_failure applies")

    @field_validator("action")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in ACTION_CLASSES:
            raise ValueError(f"unknown action {v!r}; known: {', '.join(sorted(ACTION_CLASSES))}")
        return v


class Playbook(BaseModel):
    model_config = _FROZEN

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="what rules name in wgsiem.playbook")
    name: str
    description: str = ""
    tier: int = Field(ge=1, le=3, description="1 contain, 2 revoke, 3 investigate")
    trigger: Trigger = Field(default_factory=Trigger)
    steps: list[Step] = Field(min_length=1)
    approval: Literal["policy", "always", "never"] = Field(
        "policy",
        description="policy: the governance policy decides; always: every run needs approval; never: "
        "automatic even above the policy's tier (the peer threshold still applies)",
    )
    approval_ttl_secs: float | None = Field(None, gt=0, description="override of the policy's approval TTL")
    on_crash: Literal["resume", "rollback"] = Field(
        "resume", description="after a crash mid-run: re-apply the in-flight step and go on, or undo"
    )
    source: str = Field("", exclude=True, description="file it was loaded from (set by the loader)")

    def matches(self, alert: dict[str, Any]) -> bool:
        rule = _dict(alert.get("rule"))
        meta = _dict(_dict(alert.get("wireguard")).get("alert"))
        names = {str(rule.get("id", "")), str(rule.get("name", "")), str(meta.get("rule_name", ""))} - {""}
        if meta.get("playbook") != self.id and not names & set(self.trigger.rules):
            return False
        event = _dict(alert.get("event"))
        try:
            severity = int(event.get("severity", 0) or 0)
        except (TypeError, ValueError):
            severity = 0
        if severity < self.trigger.min_severity:
            return False
        if self.trigger.entity:
            entity = _dict(meta.get("entity"))
            return str(entity.get("field", "")) in self.trigger.entity
        return True


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def builtin_playbook_dir() -> Path:
    return Path(str(resources.files("wgsiem.respond") / "playbooks"))


def load_playbook_text(text: str, filename: str) -> Playbook:
    """One playbook from YAML text, or a :class:`ConfigError` listing every problem with its line."""
    root, data = compose_yaml(text, filename)
    if not isinstance(data, dict):
        raise ConfigError(
            "a playbook must be a mapping",
            location=Location(filename, 1, 1),
            fix="start with `id:`, `name:`, `tier:` and `steps:`",
        )
    try:
        pb = Playbook.model_validate(data)
    except ValidationError as exc:
        problems: list[WgsiemError] = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            path = ".".join(str(s) for s in loc) or "(top level)"
            if err["type"] == "missing":
                node = node_for(root, loc[:-1])
                what, fix = f"missing required key `{path}`", f"add `{loc[-1]}:`"
            elif err["type"] == "extra_forbidden":
                node = node_for(root, loc)
                what, fix = f"unknown key `{path}`", "remove it (see docs/respond/playbooks.md)"
            else:
                node = node_for(root, loc)
                what, fix = f"`{path}`: {err['msg']}", "see docs/respond/playbooks.md for the allowed values"
            problems.append(ConfigError(what, location=node_location(node, filename), fix=fix))
        raise ConfigError(f"{len(problems)} problem(s) in {filename}", problems=problems) from exc
    return pb.model_copy(update={"source": filename})


def load_playbook(path: Path) -> Playbook:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read playbook: {exc.strerror}", location=Location(str(path)), fix="check playbook_dirs"
        ) from exc
    return load_playbook_text(text, str(path))


def load_playbooks(dirs: list[Path], *, builtin: bool = True) -> dict[str, Playbook]:
    """Every playbook (built-ins first; a later file with the same id replaces it). Every problem in
    every file is collected into one :class:`ConfigError`."""
    paths: list[Path] = []
    for d in ([builtin_playbook_dir()] if builtin else []) + list(dirs):
        if not d.is_dir():
            raise ConfigError(
                "playbook directory not found", location=Location(str(d)), fix="fix respond.playbook_dirs"
            )
        paths.extend(sorted(p for p in d.rglob("*") if p.suffix in (".yaml", ".yml")))
    out: dict[str, Playbook] = {}
    problems: list[WgsiemError] = []
    for p in paths:
        try:
            pb = load_playbook(p)
        except ConfigError as exc:
            problems.extend(exc.problems or [exc])
            continue
        out[pb.id] = pb
    if problems:
        raise ConfigError(f"{len(problems)} playbook problem(s)", problems=problems)
    return out

"""Tier 3: open a case (webhook) and notify people (webhook or e-mail).

Channels are deployment settings, not playbook params, because they hold secrets::

    ctx.settings["notify"] = {
        "webhooks": {"soc": {"url": "https://cases.example/api/cases",
                             "auth_header": "Authorization", "auth_value": "Bearer …"}},
        "smtp": {"oncall": {"host": "mail.example", "port": 587, "starttls": True,
                            "username": "wgsiem", "password": "…",
                            "sender": "wgsiem@example", "recipients": ["soc@example"]}},
    }

A playbook step names a channel: ``open_case: {channel: soc}``, ``notify: {channel: oncall}``.
``auth_value`` and ``password`` are :class:`pydantic.SecretStr`: never in a plan, result, log or error;
a URL is shown without its query string and user info (tokens hide there too).

Every message carries ``idempotency_key`` (also the ``Idempotency-Key`` header): the same alert, action
and channel give the same key, so a retried delivery can be recognised by the receiver. ``verified``
means the receiver accepted it: HTTP 2xx, or the SMTP server accepted every recipient.
"""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
import ssl
import time
from email.message import EmailMessage
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from wgsiem.errors import ConfigError
from wgsiem.respond.actions.base import ActionContext, ActionPlan, ActionResult, Target

__all__ = ["Notify", "NotifySettings", "OpenCase", "SmtpChannel", "WebhookChannel", "safe_url"]


class WebhookChannel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="http(s) URL the JSON is POSTed to.")
    auth_header: str | None = Field(None, description="Header carrying the credential (Authorization …).")
    auth_value: SecretStr | None = Field(None, description="Its value (secret).")
    ca_file: str | None = Field(None, description="PEM CA for an https URL; default: system store.")
    timeout_secs: float = Field(10.0, gt=0)


class SmtpChannel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = Field(
        False, description="Upgrade with STARTTLS (verified against ca_file/system store)."
    )
    ca_file: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    sender: str
    recipients: list[str] = Field(min_length=1)
    timeout_secs: float = Field(10.0, gt=0)


class NotifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    webhooks: dict[str, WebhookChannel] = Field(default_factory=dict)
    smtp: dict[str, SmtpChannel] = Field(default_factory=dict)


def safe_url(url: str) -> str:
    """``url`` without user info, query and fragment: what may be shown."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _settings(ctx: ActionContext) -> NotifySettings:
    raw = ctx.settings.get("notify") or {}
    if isinstance(raw, NotifySettings):
        return raw
    try:
        return NotifySettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(
            f"notify settings are invalid: {problems}", fix="see docs/respond/investigate.md"
        ) from None


def _target_dict(target: Target) -> dict[str, Any]:
    keys = ("interface", "peer_public_key", "endpoint_ip", "endpoint_port", "user", "alert_id", "rule_id")
    return {k: getattr(target, k) for k in keys if getattr(target, k) is not None}


class _Messenger:
    """What ``open_case`` and ``notify`` share: channel lookup, the message, webhook and SMTP delivery."""

    name: ClassVar[str]
    tier: ClassVar[int] = 3
    reversible: ClassVar[bool] = False
    kinds: ClassVar[tuple[str, ...]] = ("webhooks", "smtp")

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        unknown = set(params) - {"channel", "title", "message"}
        if unknown:
            raise ConfigError(
                f"{self.name}: unknown params {sorted(unknown)}", fix="use channel, title, message"
            )
        for key in ("channel", "title", "message"):
            if params.get(key) is not None and not isinstance(params[key], str):
                raise ConfigError(f"{self.name}: {key} must be text")
        return {k: params.get(k) for k in ("channel", "title", "message")}

    def _channel(self, settings: NotifySettings, wanted: str | None) -> tuple[str, str]:
        found = {name: kind for kind in self.kinds for name in getattr(settings, kind)}
        if wanted is None:
            if len(found) != 1:
                raise ConfigError(
                    f"{self.name}: name the channel (configured: {', '.join(sorted(found)) or 'none'})",
                    fix="add `channel: <name>` to the step, or configure settings.notify",
                )
            wanted = next(iter(found))
        if wanted not in found:
            raise ConfigError(
                f"{self.name}: no channel {wanted!r} (configured: {', '.join(sorted(found)) or 'none'})",
                fix="add it under settings.notify." + "/".join(self.kinds),
            )
        return wanted, found[wanted]

    async def plan(self, target: Target, params: dict[str, Any], ctx: ActionContext) -> ActionPlan:
        params = self.validate_params(params)
        settings = _settings(ctx)
        if params["channel"] is None and not any(getattr(settings, kind) for kind in self.kinds):
            # Not configured at all: the rest of the playbook (a snapshot) must still be possible; the
            # step itself fails at apply, visibly, instead of failing the whole proposal here.
            where = "/".join(f"settings.notify.{k}" for k in self.kinds)
            return ActionPlan(
                action=self.name,
                target=target,
                params=params,
                summary=f"cannot {self._verb}: no channel configured under {where}",
                details={"skipped": f"no channel configured under {where}"},
            )
        channel, kind = self._channel(settings, params["channel"])
        title = params["title"] or f"wgsiem: {target.rule_id or 'alert'} on {ctx.hostname}"
        where = "webhook" if kind == "webhooks" else "e-mail"
        key_parts = (
            self.name,
            channel,
            target.alert_id or "",
            target.rule_id or "",
            target.peer_public_key or "",
        )
        return ActionPlan(
            action=self.name,
            target=target,
            params=params,
            summary=f"{self._verb} via {where} channel {channel!r}: {title}",
            details={
                "channel": channel,
                "kind": kind,
                "title": title,
                "idempotency_key": hashlib.sha256("\x1f".join(key_parts).encode()).hexdigest()[:32],
            },
        )

    _verb: ClassVar[str] = "send"

    def message(self, plan: ActionPlan, ctx: ActionContext) -> dict[str, Any]:
        return {
            "source": "wgsiem",
            "kind": "case" if self.name == "open_case" else "notification",
            "title": plan.details["title"],
            "message": plan.params.get("message"),
            "hostname": ctx.hostname,
            "alert_id": plan.target.alert_id,
            "rule_id": plan.target.rule_id,
            "target": _target_dict(plan.target),
            "case_dir": str(ctx.case_dir),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "idempotency_key": plan.details["idempotency_key"],
        }

    async def apply(self, plan: ActionPlan, ctx: ActionContext) -> ActionResult:
        if "skipped" in plan.details:
            return ActionResult(ok=False, summary=plan.summary, error=plan.details["skipped"])
        if ctx.dry_run:
            return ActionResult(ok=True, summary=f"dry run: would {plan.summary}", details=dict(plan.details))
        settings = _settings(ctx)
        channel, kind = plan.details["channel"], plan.details["kind"]
        body = self.message(plan, ctx)
        if kind == "webhooks":
            return await self._webhook(settings.webhooks[channel], body, plan)
        return await self._smtp(settings.smtp[channel], body, plan)

    async def _webhook(self, ch: WebhookChannel, body: dict[str, Any], plan: ActionPlan) -> ActionResult:
        headers = {"Idempotency-Key": body["idempotency_key"], "User-Agent": "wgsiem"}
        if ch.auth_header and ch.auth_value is not None:
            headers[ch.auth_header] = ch.auth_value.get_secret_value()
        ssl_ctx: ssl.SSLContext | bool = True
        if ch.ca_file:
            ssl_ctx = ssl.create_default_context(cafile=ch.ca_file)
        shown = safe_url(ch.url)
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ch.timeout_secs)) as session,
                session.post(ch.url, json=body, headers=headers, ssl=ssl_ctx) as resp,
            ):
                status = resp.status
                text = await resp.text(errors="replace")
        except (aiohttp.ClientError, TimeoutError, OSError, ssl.SSLError) as exc:
            return ActionResult(
                ok=False,
                summary=f"could not POST to {shown}",
                error=f"{type(exc).__name__}: {_scrub(exc, ch)}",
            )
        details: dict[str, Any] = {"channel": plan.details["channel"], "url": shown, "status": status}
        ref = _case_ref(text) if 200 <= status < 300 else None
        if ref is not None:
            details["case_ref"] = ref
        if not 200 <= status < 300:
            return ActionResult(
                ok=False, summary=f"{shown} answered {status}", details=details, error=text[:200]
            )
        return ActionResult(
            ok=True,
            verified=True,
            summary=f"{self._done} via {shown} ({status})" + (f", case {ref}" if ref else ""),
            details=details,
        )

    async def _smtp(self, ch: SmtpChannel, body: dict[str, Any], plan: ActionPlan) -> ActionResult:
        msg = EmailMessage()
        msg["Subject"] = f"[wgsiem] {body['title']}"
        msg["From"] = ch.sender
        msg["To"] = ", ".join(ch.recipients)
        msg["X-Wgsiem-Idempotency-Key"] = body["idempotency_key"]
        lines = [body["title"], ""]
        if body.get("message"):
            lines += [body["message"], ""]
        lines += [f"{k}: {v}" for k, v in body["target"].items()]
        lines += [
            "",
            f"gateway: {body['hostname']}",
            f"case folder: {body['case_dir']}",
            f"at: {body['created']}",
        ]
        msg.set_content("\n".join(lines) + "\n")
        try:
            refused = await asyncio.to_thread(_send_mail, ch, msg)
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            return ActionResult(
                ok=False,
                summary=f"could not send mail via {ch.host}:{ch.port}",
                error=f"{type(exc).__name__}: {_scrub(exc, ch)}",
            )
        details = {
            "channel": plan.details["channel"],
            "server": f"{ch.host}:{ch.port}",
            "refused": sorted(refused),
        }
        ok = not refused
        return ActionResult(
            ok=ok,
            verified=ok,
            summary=f"{self._done} by e-mail to {len(ch.recipients) - len(refused)} recipient(s)",
            details=details,
            error=None if ok else f"refused: {', '.join(sorted(refused))}",
        )

    @property
    def _done(self) -> str:
        return "case opened" if self.name == "open_case" else "notified"

    async def undo(self, undo: dict[str, Any], ctx: ActionContext) -> ActionResult:
        return ActionResult(ok=False, summary=f"{self.name} cannot be undone", error="not reversible")


def _send_mail(ch: SmtpChannel, msg: EmailMessage) -> dict[str, Any]:
    with smtplib.SMTP(ch.host, ch.port, timeout=ch.timeout_secs) as smtp:
        smtp.ehlo()
        if ch.starttls:
            smtp.starttls(context=ssl.create_default_context(cafile=ch.ca_file))
            smtp.ehlo()
        if ch.username and ch.password is not None:
            smtp.login(ch.username, ch.password.get_secret_value())
        return dict(smtp.send_message(msg))


def _scrub(exc: BaseException, ch: WebhookChannel | SmtpChannel) -> str:
    text = str(exc)
    secret = ch.auth_value if isinstance(ch, WebhookChannel) else ch.password
    if secret is not None and secret.get_secret_value():
        text = text.replace(secret.get_secret_value(), "**********")
    if isinstance(ch, WebhookChannel):
        text = text.replace(ch.url, safe_url(ch.url))
    return text[:300]


def _case_ref(text: str) -> str | None:
    import json

    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if isinstance(obj, dict):
        for key in ("id", "key", "number", "case_id", "caseId"):
            if isinstance(obj.get(key), str | int) and not isinstance(obj.get(key), bool):
                return str(obj[key])
    return None


class OpenCase(_Messenger):
    """``open_case``: POST the incident to a case/ticket system's webhook; the answer's id is kept."""

    name: ClassVar[str] = "open_case"
    kinds: ClassVar[tuple[str, ...]] = ("webhooks",)
    _verb: ClassVar[str] = "open a case"


class Notify(_Messenger):
    """``notify``: tell people — a webhook (chat, paging) or an e-mail through SMTP."""

    name: ClassVar[str] = "notify"
    _verb: ClassVar[str] = "notify"

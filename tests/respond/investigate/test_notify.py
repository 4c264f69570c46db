"""``open_case`` and ``notify`` against a local aiohttp receiver and a local aiosmtpd (loopback)."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from wgsiem.errors import ConfigError
from wgsiem.respond.actions.base import ActionResult, Target
from wgsiem.respond.actions.notify import Notify, OpenCase, safe_url

from .support import FakeExecutor, context

aiosmtpd = pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.handlers import Message  # noqa: E402

TOKEN = "Bearer s3cr3t-t0ken-value"
TARGET = Target(
    interface="wg0",
    peer_public_key="LMRy47Sg4S6IpX0TapE5XKyBED4Mbj15lG56zxQYzkM=",
    endpoint_ip="203.0.113.12",
    alert_id="436e2f9fbb4066182a2836ea97b15355",
    rule_id="5731ad8c-888c-4bf0-9fe9-2669305d0ce4",
)


class Receiver:
    """An aiohttp app on 127.0.0.1 that records requests and answers a fixed status/body."""

    def __init__(self, status: int = 201, body: Any = None) -> None:
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.status = status
        self.body = body if body is not None else {"id": "CASE-42"}

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.json()))
        return web.json_response(self.body, status=self.status)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/cases", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/cases?token=in-query"

    async def stop(self) -> None:
        await self.runner.cleanup()


def _run(action: Any, ctx: Any, params: dict[str, Any]) -> ActionResult:
    async def go() -> ActionResult:
        plan = await action.plan(TARGET, params, ctx)
        assert TOKEN not in repr(plan)
        return await action.apply(plan, ctx)

    return asyncio.run(go())


def test_open_case_posts_json_with_auth_and_keeps_the_case_id(tmp_path: Path) -> None:
    receiver = Receiver()

    async def run() -> tuple[ActionResult, ActionResult]:
        url = await receiver.start()
        settings = {"webhooks": {"soc": {"url": url, "auth_header": "Authorization", "auth_value": TOKEN}}}
        ctx = context(FakeExecutor({}), tmp_path, notify=settings)
        action = OpenCase()
        plan = await action.plan(TARGET, {"title": "Spoofing peer"}, ctx)
        first = await action.apply(plan, ctx)
        second = await action.apply(await action.plan(TARGET, {"title": "Spoofing peer"}, ctx), ctx)
        await receiver.stop()
        return first, second

    first, second = asyncio.run(run())
    assert first.ok and first.verified and first.details["case_ref"] == "CASE-42"
    assert first.details["url"].endswith("/cases") and "token" not in json.dumps(first.details)
    (headers, body), (headers2, _) = receiver.requests
    assert headers["Authorization"] == TOKEN
    assert headers["Idempotency-Key"] == headers2["Idempotency-Key"] == body["idempotency_key"]
    assert body["kind"] == "case" and body["title"] == "Spoofing peer"
    assert body["target"]["peer_public_key"] == TARGET.peer_public_key
    assert body["alert_id"] == TARGET.alert_id and body["case_dir"] == str(tmp_path / "case")
    assert TOKEN not in repr(first) + repr(second)


def test_webhook_refusal_is_not_ok_and_leaks_nothing(tmp_path: Path) -> None:
    receiver = Receiver(status=503, body={"error": "down"})

    async def run() -> ActionResult:
        url = await receiver.start()
        settings = {"webhooks": {"soc": {"url": url, "auth_header": "X-Api-Key", "auth_value": TOKEN}}}
        ctx = context(FakeExecutor({}), tmp_path, notify=settings)
        action = Notify()
        result = await action.apply(await action.plan(TARGET, {"channel": "soc"}, ctx), ctx)
        await receiver.stop()
        return result

    result = asyncio.run(run())
    assert not result.ok and result.details["status"] == 503
    assert TOKEN not in repr(result) and "in-query" not in repr(result)


def test_unreachable_webhook(tmp_path: Path) -> None:
    url = "http://user:pw@127.0.0.1:9/hook?key=abc"
    ctx = context(FakeExecutor({}), tmp_path, notify={"webhooks": {"x": {"url": url}}})
    result = _run(Notify(), ctx, {})
    assert not result.ok and "pw" not in repr(result) and "key=abc" not in repr(result)
    assert safe_url(url) == "http://127.0.0.1:9/hook"


def test_channel_must_exist(tmp_path: Path) -> None:
    ctx = context(
        FakeExecutor({}),
        tmp_path,
        notify={"webhooks": {"a": {"url": "http://x/"}, "b": {"url": "http://y/"}}},
    )
    with pytest.raises(ConfigError, match="name the channel"):
        asyncio.run(Notify().plan(TARGET, {}, ctx))
    with pytest.raises(ConfigError, match="no channel 'c'"):
        asyncio.run(Notify().plan(TARGET, {"channel": "c"}, ctx))
    smtp_only = context(
        FakeExecutor({}),
        tmp_path,
        notify={"smtp": {"m": {"host": "h", "sender": "a@b", "recipients": ["c@d"]}}},
    )
    with pytest.raises(ConfigError):  # a case needs a webhook, not e-mail
        asyncio.run(OpenCase().plan(TARGET, {"channel": "m"}, smtp_only))


class _Inbox(Message):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[Any] = []

    def handle_message(self, message: Any) -> None:
        self.messages.append(message)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("starttls", [False, True])
def test_notify_by_smtp(tmp_path: Path, starttls: bool) -> None:
    from tests.sinks.syslog.rsyslog import make_tls_files

    inbox = _Inbox()
    kwargs: dict[str, Any] = {}
    channel: dict[str, Any] = {"sender": "wgsiem@gw.example", "recipients": ["soc@corp.example"]}
    if starttls:
        tls = make_tls_files(tmp_path / "tls")
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(tls.server_cert, tls.server_key)
        kwargs = {"tls_context": server_ctx, "require_starttls": True}
        channel.update({"starttls": True, "ca_file": str(tls.ca)})
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        channel.update({"host": "localhost" if starttls else "127.0.0.1", "port": port})
        ctx = context(FakeExecutor({}), tmp_path, notify={"smtp": {"oncall": channel}})
        result = _run(Notify(), ctx, {"channel": "oncall", "message": "peer forged 10.9.0.99"})
    finally:
        controller.stop()
    assert result.ok and result.verified, result
    (msg,) = inbox.messages
    assert msg["To"] == "soc@corp.example" and msg["Subject"].startswith("[wgsiem] wgsiem: 5731ad8c")
    body = msg.get_payload()
    assert "peer forged 10.9.0.99" in body and TARGET.peer_public_key in body
    assert msg["X-Wgsiem-Idempotency-Key"]


def test_smtp_login_password_never_leaks(tmp_path: Path) -> None:
    from aiosmtpd.smtp import AuthResult

    from tests.sinks.syslog.rsyslog import make_tls_files

    seen: list[tuple[str, str]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        seen.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"right-pass")

    tls = make_tls_files(tmp_path / "tls")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tls.server_cert, tls.server_key)
    inbox = _Inbox()
    port = _free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=server_ctx, require_starttls=True,
        authenticator=authenticator, auth_required=True,
    )  # fmt: skip
    controller.start()
    try:
        results = {}
        for password in ("wrong-pass", "right-pass"):
            channel = {
                "host": "localhost", "port": port, "starttls": True, "ca_file": str(tls.ca),
                "username": "wgsiem", "password": password, "sender": "w@g", "recipients": ["s@c"],
            }  # fmt: skip
            ctx = context(FakeExecutor({}), tmp_path, notify={"smtp": {"m": channel}})
            results[password] = _run(Notify(), ctx, {})
    finally:
        controller.stop()
    assert seen == [("wgsiem", "wrong-pass"), ("wgsiem", "right-pass")]
    assert not results["wrong-pass"].ok and "wrong-pass" not in repr(results["wrong-pass"])
    assert results["right-pass"].ok and len(inbox.messages) == 1


def test_no_channel_configured_fails_the_step_not_the_playbook(tmp_path: Path) -> None:
    ctx = context(FakeExecutor({}), tmp_path)
    for action in (Notify(), OpenCase()):
        plan = asyncio.run(action.plan(TARGET, {}, ctx))  # planning succeeds: the proposal stands
        assert "no channel configured" in plan.summary
        result = asyncio.run(action.apply(plan, ctx))
        assert not result.ok and "settings.notify" in (result.error or "")

"""The context source's runtime for real: its aiohttp server on loopback (plain and TLS) and files."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.sources.context.helpers import FIXTURES, lab_like_directory, make_source
from tests.support.ecs import validate
from wgsiem.errors import ParseError, SourceError
from wgsiem.sources.context.config import ContextFileConfig, ContextHttpConfig
from wgsiem.sources.context.source import ContextSource

pytestmark = pytest.mark.component

TOKEN = "s3cr3t-token-0123456789abcdef"
GOOD = b'{"time":"2026-11-25T09:14:03Z","provider":"okta","user":"alice","result":"success"}'


@asynccontextmanager
async def running(src: ContextSource) -> AsyncIterator[list[dict[str, Any]]]:
    docs: list[dict[str, Any]] = []

    async def emit(batch: list[Any]) -> None:
        docs.extend(e.data for e in batch)

    stop = asyncio.Event()
    task = asyncio.create_task(src.run(emit, stop))
    try:
        async with asyncio.timeout(10):
            while not src.ready.is_set():
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield docs
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def http_source(tmp: Path, **http: Any) -> ContextSource:
    cfg = ContextHttpConfig(listen_port=0, token=TOKEN, **http)  # type: ignore[arg-type]
    return make_source(tmp, lab_like_directory(), http=cfg)


async def post(
    src: ContextSource, kind: str, body: bytes, token: str | None = TOKEN, scheme: str = "http", **kw: Any
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as s:
        url = f"{scheme}://127.0.0.1:{src.bound_port}/v1/ingest/{kind}"
        async with s.post(url, data=body, headers=headers, **kw) as r:
            return r.status, await r.json()


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro())  # type: ignore[arg-type]


def test_accepts_ndjson_and_reports_each_bad_line(tmp_path: Path) -> None:
    src = http_source(tmp_path)

    async def go() -> None:
        async with running(src) as docs:
            body = (FIXTURES / "identity.ndjson").read_bytes()
            assert await post(src, "identity", body) == (
                200,
                {"accepted": 4, "rejected": 0, "errors": [], "errors_truncated": False},
            )
            status, answer = await post(
                src, "identity", GOOD + b"\n" + GOOD.replace(b'"alice"', b"1") + b"\n" + GOOD + b"\nnope"
            )
            assert status == 200
            assert answer["accepted"] == 2 and answer["rejected"] == 2
            assert answer["errors"][0] == "line 2: field `user`: expected a valid string, got 1"
            assert answer["errors"][1].startswith("line 4: invalid JSON")
            status, answer = await post(src, "identity", b"nope\n")
            assert (status, answer["accepted"]) == (400, 0)
            status, answer = await post(src, "edr", GOOD)
            assert status == 400 and "sent to the 'edr' endpoint" not in answer["errors"][0]
            status, _ = await post(src, "dns", GOOD)
            assert status == 404
            assert len(docs) == 6
            assert [p for d in docs for p in validate(d)] == []

    run(go)
    tel = src.telemetry
    assert (tel.sent, tel.dropped["invalid_record"]) == (6, 4)


def test_bad_or_missing_token_is_401_and_token_never_shown(tmp_path: Path) -> None:
    src = http_source(tmp_path)

    async def go() -> None:
        async with running(src) as docs:
            for token in (None, "wrong", TOKEN + "x", TOKEN[:-1]):
                status, answer = await post(src, "identity", GOOD, token=token)
                assert status == 401 and TOKEN not in str(answer)
            async with aiohttp.ClientSession() as s:
                url = f"http://127.0.0.1:{src.bound_port}/v1/ingest/identity"
                async with s.post(url, data=GOOD, headers={"Authorization": f"Basic {TOKEN}"}) as r:
                    assert r.status == 401
                    assert r.headers["WWW-Authenticate"] == 'Bearer realm="wgsiem"'
            assert docs == []

    run(go)
    assert TOKEN not in repr(src.config) and TOKEN not in str(src.telemetry.snapshot())
    assert TOKEN not in str(src.status())


def test_body_over_the_limit_is_413_unread(tmp_path: Path) -> None:
    src = http_source(tmp_path, max_body_bytes=1000)

    async def go() -> None:
        async with running(src) as docs:
            big = b"\n".join([GOOD] * 20)
            status, answer = await post(src, "identity", big)
            assert status == 413 and "max_body_bytes=1000" in answer["error"]

            async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked upload
                for _ in range(20):
                    yield GOOD + b"\n"

            status, _ = await post(src, "identity", chunks())  # type: ignore[arg-type]
            assert status == 413
            assert (await post(src, "identity", GOOD))[0] == 200
            assert len(docs) == 1

    run(go)
    assert src.telemetry.dropped["body_too_large"] == 2


def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    src = http_source(tmp_path, tls_cert_path=str(cert), tls_key_path=str(key))
    client = ssl.create_default_context(cafile=str(cert))

    async def go() -> None:
        async with running(src) as docs:
            assert (await post(src, "identity", GOOD, scheme="https", ssl=client))[0] == 200
            with pytest.raises(aiohttp.ClientError):
                await post(src, "identity", GOOD, scheme="http")
            assert len(docs) == 1

    run(go)


def test_unreadable_tls_key_is_a_source_error(tmp_path: Path) -> None:
    src = http_source(tmp_path, tls_cert_path=str(tmp_path / "no.pem"), tls_key_path=str(tmp_path / "no.key"))

    async def go() -> None:
        async with running(src):
            pass

    with pytest.raises(SourceError, match="cannot load TLS certificate"):
        run(go)


def test_config_rejects_short_token_and_half_tls() -> None:
    with pytest.raises(ValueError, match="at least 16 characters"):
        ContextHttpConfig(token="short")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="set both tls_cert_path and tls_key_path"):
        ContextHttpConfig(token=TOKEN, tls_cert_path="/x")  # type: ignore[arg-type]


def test_file_read_once_then_not_again_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "mixed.ndjson"
    path.write_bytes((FIXTURES / "mixed.ndjson").read_bytes())
    files = [ContextFileConfig(path=str(path))]

    async def go(src: ContextSource) -> list[dict[str, Any]]:
        async with running(src) as docs:
            pass
        return docs

    src = make_source(tmp_path, files=files)
    docs = asyncio.run(go(src))
    assert [d["event"]["action"] for d in docs] == [
        "identity-mfa",
        "edr-alert",
        "config-run",
        "change-ticket",
    ]
    assert src.telemetry.last_error is not None and f"{path}:4" in src.telemetry.last_error
    src.save_state()
    again = make_source(tmp_path, files=files)
    assert asyncio.run(go(again)) == []


def test_followed_file_partial_lines_rotation_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "edr.ndjson"
    lines = (FIXTURES / "edr.ndjson").read_bytes().splitlines(keepends=True)
    path.write_bytes(b"")
    src = make_source(
        tmp_path, files=[ContextFileConfig(path=str(path), kind="edr", follow=True, poll_interval_secs=0.05)]
    )

    async def until(docs: list[dict[str, Any]], n: int) -> None:
        async with asyncio.timeout(10):
            while len(docs) < n:
                await asyncio.sleep(0.02)

    async def go() -> list[dict[str, Any]]:
        async with running(src) as docs:
            with path.open("ab") as f:
                f.write(lines[0] + lines[1][:20])  # the second line is still being written
            await until(docs, 1)
            with path.open("ab") as f:
                f.write(lines[1][20:])
            await until(docs, 2)
            path.rename(tmp_path / "edr.ndjson.1")  # rotation: a new file under the same name
            path.write_bytes(lines[1])
            await until(docs, 3)
            path.write_bytes(b"")  # truncation, then new content
            await asyncio.to_thread(path.write_bytes, lines[0])
            await until(docs, 4)
        return docs

    docs = asyncio.run(go())
    assert [d["host"]["name"] for d in docs] == ["laptop-alice", "gw-1", "gw-1", "laptop-alice"]
    assert src.telemetry.errors == {}


def test_replay_detect_read_process(tmp_path: Path) -> None:
    for name, yes in [
        ("mixed.ndjson", True),
        ("ansible_json_callback_first_run.json", True),
        ("ansible_json_callback_failed_compact.json", True),
        ("identity.ndjson", False),  # no per-record kind: belongs to a configured file, not to replay
    ]:
        p = FIXTURES / name
        assert ContextSource.replay_detect(p, p.read_bytes()[:4096]) is yes, name
    items = list(ContextSource.replay_read(FIXTURES / "mixed.ndjson"))
    assert [i.location.rsplit(":", 1)[1] for i in items] == ["1", "2", "3", "4", "5"]
    assert isinstance(items[3].payload, ParseError)
    assert items[0].time == 1795598043.221  # 2026-11-25T09:14:03.221Z
    src = make_source(tmp_path)
    docs = [
        e.data for i in items if not isinstance(i.payload, ParseError) for e in src.process(i.payload, i.time)
    ]
    live = make_source(tmp_path / "live")
    parsed = [
        e.data
        for i in items
        if not isinstance(i.payload, ParseError)
        for e in live.process(i.payload, i.time)
    ]
    assert [d["event"]["id"] for d in docs] == [d["event"]["id"] for d in parsed]
    assert orjson.dumps([d["@timestamp"] for d in docs])


def test_large_body_is_ingested_in_chunks_with_exact_line_numbers(tmp_path: Path) -> None:
    src = http_source(tmp_path)
    lines = [GOOD] * 5000
    lines[2499] = b'{"time": "yesterday"}'
    lines[4999] = b"}"

    async def go() -> None:
        async with running(src) as docs:
            status, answer = await post(src, "identity", b"\n".join(lines))
            assert status == 200
            assert (answer["accepted"], answer["rejected"]) == (4998, 2)
            assert answer["errors"][0].startswith("line 2500: field `time`: expected an RFC 3339 time")
            assert answer["errors"][1].startswith("line 5000: invalid JSON")
            assert len(docs) == 4998

    run(go)


def test_ansible_document_posted_to_config_run(tmp_path: Path) -> None:
    src = http_source(tmp_path)

    async def go() -> None:
        async with running(src) as docs:
            body = (FIXTURES / "ansible_json_callback_first_run.json").read_bytes()
            status, answer = await post(src, "config_run", body)
            assert (status, answer["accepted"]) == (200, 1)
            assert [d["event"]["action"] for d in docs] == ["config-task"] * 3 + ["config-run"]

    run(go)

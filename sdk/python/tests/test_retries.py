"""Retries with backoff: for idempotent calls (GET, PUT, submit with its Idempotency-Key) on connection
errors, 503 and 429 with Retry-After; never for other calls once a request may have reached the server.

The real binary covers a server that is not up yet; a scripted stub covers answers the real server gives
only under load or behind a proxy (503, 429 with Retry-After, a cut connection, an HTML error page)."""
from __future__ import annotations

import http.server
import json
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

import fastgpu
from conftest import Server, make_root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_is_not_up_yet(tmp_path: Path) -> None:
    port = free_port()
    server = Server(make_root("fastgpu-sdk-late-"), listen=f"127.0.0.1:{port}")
    client = fastgpu.Client(f"http://127.0.0.1:{port}", "unused", max_retries=150, backoff=0.05, max_backoff=0.5)
    pauses: List[float] = []

    def sleep(d: float) -> None:
        # The first failed attempt starts the server; later ones back off for real while it comes up.
        if not pauses:
            server.spawn()
        pauses.append(d)
        time.sleep(d)

    client._transport._sleep = sleep
    try:
        assert client.health() == {"status": "ok"}
        assert pauses, "the first attempt should have found no server"
        assert pauses[0] <= 0.05 and max(pauses) <= 0.5  # backoff grows, capped
        server.wait_ready()

        # Down again: a submit is retried too (nothing was sent), and creates one job.
        server.stop()
        pauses.clear()
        with fastgpu.Client(server.url, server.token, max_retries=150, backoff=0.05, max_backoff=0.5) as c:
            c._transport._sleep = sleep
            job = c.jobs.submit("true", name="after-restart")
            assert pauses
            assert [j.id for j in c.jobs.list() if j.name == "after-restart"] == [job.id]
    finally:
        client.close()
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


def test_no_retries_when_told(tmp_path: Path) -> None:
    port = free_port()
    client = fastgpu.Client(f"http://127.0.0.1:{port}", "t", max_retries=0)
    started = time.monotonic()
    with pytest.raises(fastgpu.ConnectionFailed) as e:
        client.health()
    assert time.monotonic() - started < 2
    assert f"cannot reach the FastGPU server at http://127.0.0.1:{port} (URL from url argument)" in str(e.value)
    assert "fastgpu up" in str(e.value)
    assert isinstance(e.value, fastgpu.Unavailable)


Reply = Tuple[int, Dict[str, str], bytes]  # status, headers, body; status 0 = cut the connection


class Stub:
    """An HTTP server answering each path from a script of replies (the last one repeats)."""

    def __init__(self) -> None:
        self.script: Dict[str, List[Reply]] = {}
        self.requests: List[Tuple[str, str, Dict[str, str]]] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def handle_one(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                path = self.path.split("?", 1)[0]
                stub.requests.append((self.command, path, dict(self.headers)))
                replies = stub.script.get(path) or [(404, {}, b'{"error":{"code":"not_found","message":"no"}}')]
                status, headers, body = replies.pop(0) if len(replies) > 1 else replies[0]
                if status == 0:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = handle_one

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def count(self, path: str) -> int:
        return sum(1 for _, p, _ in self.requests if p == path)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def ok(doc: object, status: int = 200) -> Reply:
    return (status, {"Content-Type": "application/json"}, json.dumps(doc).encode())


def err(status: int, code: str, message: str, headers: Dict[str, str] = {}) -> Reply:
    return (status, {"Content-Type": "application/json", **headers},
            json.dumps({"error": {"code": code, "message": message}}).encode())


JOB = {"id": "j-1", "name": "x", "state": "QUEUED", "command": ["true"]}


@pytest.fixture()
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.close()


@pytest.fixture()
def stub_client(stub: Stub) -> Iterator[fastgpu.Client]:
    with fastgpu.Client(stub.url, "tok", max_retries=4, backoff=0.001, max_backoff=0.01) as c:
        yield c


def test_get_is_retried_on_503_and_a_cut_connection(stub: Stub, stub_client: fastgpu.Client) -> None:
    stub.script["/v1/jobs/j-1"] = [err(503, "unavailable", "starting"), (0, {}, b""), ok(JOB)]
    assert stub_client.jobs.get("j-1").id == "j-1"
    assert stub.count("/v1/jobs/j-1") == 3


def test_get_gives_up_after_max_retries(stub: Stub, stub_client: fastgpu.Client) -> None:
    stub.script["/v1/jobs/j-1"] = [err(503, "unavailable", "server is shutting down")]
    with pytest.raises(fastgpu.Unavailable, match="server is shutting down"):
        stub_client.jobs.get("j-1")
    assert stub.count("/v1/jobs/j-1") == 5  # 1 + max_retries


def test_429_with_retry_after_is_retried_and_without_it_is_not(stub: Stub, stub_client: fastgpu.Client) -> None:
    stub.script["/v1/gpus"] = [err(429, "resource_exhausted", "slow down", {"Retry-After": "0"}), ok({"gpus": []})]
    assert stub_client.gpus.list() == []
    assert stub.count("/v1/gpus") == 2
    stub.script["/v1/nodes"] = [err(429, "resource_exhausted", "quota: too many")]
    with pytest.raises(fastgpu.QuotaExceeded, match="quota: too many"):
        stub_client.nodes.list()
    assert stub.count("/v1/nodes") == 1


def test_submit_is_retried_with_the_same_idempotency_key(stub: Stub, stub_client: fastgpu.Client) -> None:
    stub.script["/v1/jobs"] = [err(503, "unavailable", "busy"), (0, {}, b""), ok(JOB, 201)]
    assert stub_client.jobs.submit("true").id == "j-1"
    keys = [h.get("Idempotency-Key") for m, p, h in stub.requests if p == "/v1/jobs"]
    assert len(keys) == 3 and keys[0] and len(set(keys)) == 1


def test_calls_that_are_not_idempotent_are_not_retried(stub: Stub, stub_client: fastgpu.Client) -> None:
    stub.script["/v1/jobs/j-1/cancel"] = [err(503, "unavailable", "busy"), ok(JOB)]
    with pytest.raises(fastgpu.Unavailable, match="busy"):
        stub_client.jobs.cancel("j-1")
    assert stub.count("/v1/jobs/j-1/cancel") == 1
    stub.script["/v1/projects"] = [(0, {}, b""), ok({"name": "p"}, 201)]
    with pytest.raises(fastgpu.ConnectionFailed, match="request to the FastGPU server at .* failed"):
        stub_client.projects.create("p")
    assert stub.count("/v1/projects") == 1


def test_an_error_page_that_is_not_json(stub: Stub, stub_client: fastgpu.Client) -> None:
    stub.script["/v1/jobs/j-1"] = [(502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>\n")]
    with pytest.raises(fastgpu.InternalError, match=r"server answered HTTP 502: <html>Bad Gateway</html>") as e:
        stub_client.jobs.get("j-1")
    assert e.value.http_status == 502

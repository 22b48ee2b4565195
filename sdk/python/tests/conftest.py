"""Fixtures: the real `fastgpu` binary (env FASTGPU_BIN) started with `fastgpu up` on port 0 in a temp home.

Waits on conditions with deadlines (the server's url file, /healthz), never fixed sleeps.
"""
from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import pytest

SDK_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = SDK_DIR.parents[1]
sys.path.insert(0, str(SDK_DIR))  # the package from the source tree, not an installed copy

import fastgpu  # noqa: E402


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, interval: float = 0.02) -> bool:
    """Polls `cond` until it is true or `timeout` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)  # poll interval, not a wait for an event
    return cond()


def fastgpu_bin() -> str:
    b = os.environ.get("FASTGPU_BIN", "")
    if not b:
        pytest.fail("set FASTGPU_BIN to the fastgpu binary (e.g. FASTGPU_BIN=build/fastgpu)", pytrace=False)
    return b


class Server:
    """One `fastgpu up` process with simulated GPUs, listening on 127.0.0.1 (port 0 unless `listen` says)."""

    def __init__(self, root: Path, sim_gpus: str = "4xA100-80GB", listen: str = "127.0.0.1:0",
                 extra: Optional[List[str]] = None, ca_file: str = "") -> None:
        self.root = root
        self.home = root / "home"
        self.sim_gpus = sim_gpus
        self.listen = listen
        self.extra = list(extra or [])
        self.ca_file = ca_file
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""
        self.token = ""
        self._starts = 0

    def _healthy(self) -> bool:
        url_file = self.home / "url"
        if not url_file.exists():
            return False
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"fastgpu up exited with {self.proc.returncode}:\n{self.log()}")
        self.url = url_file.read_text().strip()
        token_file = self.home / "admin.token"
        self.token = token_file.read_text().strip() if token_file.exists() else ""
        ctx = ssl.create_default_context(cafile=self.ca_file) if self.url.startswith("https") else None
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2, context=ctx) as r:
                return r.status == 200 and bool(self.token)
        except OSError:
            return False

    def log(self) -> str:
        p = self.root / f"up-{self._starts - 1}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def spawn(self) -> None:
        """Starts the process without waiting for it to be ready."""
        (self.home / "url").unlink(missing_ok=True)
        args = [fastgpu_bin(), "up", "--home", str(self.home), "--listen", self.listen, "--sim-gpus", self.sim_gpus,
                *self.extra]
        out = open(self.root / f"up-{self._starts}.log", "wb")
        self._starts += 1
        self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        if not wait_for(self._healthy, timeout):
            raise RuntimeError(f"fastgpu up did not become ready; its output:\n{self.log()}")

    def start(self) -> "Server":
        self.spawn()
        self.wait_ready()
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def client(self, token: Optional[str] = None, **kw) -> fastgpu.Client:
        return fastgpu.Client(self.url, token if token is not None else self.token,
                              ca_file=self.ca_file or None, **kw)

    def env(self) -> Dict[str, str]:
        """The environment a user of this server would have: only FASTGPU_HOME."""
        return {"FASTGPU_HOME": str(self.home)}


def make_root(prefix: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix=prefix))
    # When the server runs as root, jobs run as their project's own uid: let them reach files here.
    d.chmod(0o755)
    return d


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    root = make_root("fastgpu-sdk-")
    s = Server(root).start()
    try:
        yield s
    finally:
        try:
            with s.client() as c:
                for j in c.jobs.list(state=["QUEUED", "SCHEDULED", "STARTING", "RUNNING"]):
                    try:
                        c.jobs.cancel(j)
                    except fastgpu.FastGPUError:
                        pass
        except fastgpu.FastGPUError:
            pass
        s.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def client(server: Server) -> Iterator[fastgpu.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the caller's FastGPU settings or ~/.fastgpu."""
    for k in list(os.environ):
        if k.startswith("FASTGPU_") and k != "FASTGPU_BIN":
            monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))


@pytest.fixture()
def shared_dir() -> Iterator[Path]:
    """A directory both the test and its jobs (which may run as another uid) can write to."""
    d = make_root("fastgpu-sdk-share-")
    d.chmod(0o777)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


_users = 0


@pytest.fixture()
def new_user(client: fastgpu.Client) -> Callable[..., str]:
    """Creates a user (optionally a member of a project with a role) and returns an API token for it."""

    def make(project: Optional[str] = None, role: str = "member") -> str:
        global _users
        _users += 1
        name = f"user{_users}-{os.getpid()}"
        client.users.create(name)
        if project:
            client.projects.set_member(project, name, role)
        return client.tokens.create("sdk-test", user=name)["token"]

    return make


_projects = 0


@pytest.fixture()
def new_project(client: fastgpu.Client) -> Callable[[], str]:
    def make() -> str:
        global _projects
        _projects += 1
        name = f"p{_projects}"
        client.projects.create(name)
        return name

    return make


def dump(obj: object) -> str:
    return json.dumps(obj, indent=1, default=str)

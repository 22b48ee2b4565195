"""Finding the server, token and CA like the CLI: arguments, FASTGPU_* variables, $FASTGPU_HOME files; TLS."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Iterator

import pytest

import fastgpu
from fastgpu import config
from conftest import Server, make_root


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_default_home_and_url(tmp_path: Path) -> None:
    cfg = config.resolve(env={"HOME": str(tmp_path)})
    assert cfg.home == str(tmp_path / ".fastgpu")
    assert (cfg.url, cfg.url_from, cfg.token) == ("http://127.0.0.1:8400", "default", "")


def test_what_fastgpu_up_wrote(tmp_path: Path) -> None:
    write(tmp_path / "url", "http://127.0.0.1:9999\n")
    write(tmp_path / "admin.token", "fgp_admin\n")
    cfg = config.resolve(env={"FASTGPU_HOME": str(tmp_path)})
    assert (cfg.url, cfg.token) == ("http://127.0.0.1:9999", "fgp_admin")
    assert cfg.url_from == str(tmp_path / "url") and cfg.token_from == str(tmp_path / "admin.token")


def test_order_of_precedence(tmp_path: Path) -> None:
    write(tmp_path / "url", "http://127.0.0.1:9999")
    write(tmp_path / "admin.token", "fgp_admin")
    write(tmp_path / "credentials.json",
          json.dumps({"server": "https://gpu.example.com/", "token": "fgp_login", "ca": "/etc/ca.pem"}))
    write(tmp_path / "config.json", json.dumps({"project": "ml"}))
    env: Dict[str, str] = {"FASTGPU_HOME": str(tmp_path)}
    cfg = config.resolve(env=env)  # credentials.json (fastgpu login) before url (fastgpu up)
    assert (cfg.url, cfg.token, cfg.ca_file, cfg.project) == ("https://gpu.example.com", "fgp_login", "/etc/ca.pem", "ml")
    env["FASTGPU_URL"] = "127.0.0.1:7000"
    cfg = config.resolve(env=env)  # another server: the stored token and CA are not sent to it
    assert (cfg.url, cfg.url_from, cfg.token, cfg.ca_file) == ("http://127.0.0.1:7000", "FASTGPU_URL", "fgp_admin", "")
    env["FASTGPU_SERVER"] = "http://127.0.0.1:7001"
    env["FASTGPU_TOKEN"] = "fgp_env"
    env["FASTGPU_CA"] = "/tmp/ca.pem"
    env["FASTGPU_PROJECT"] = "cv"
    cfg = config.resolve(env=env)
    assert (cfg.url, cfg.token, cfg.ca_file, cfg.project) == ("http://127.0.0.1:7001", "fgp_env", "/tmp/ca.pem", "cv")
    cfg = config.resolve(url="http://h:1/", token="fgp_arg", ca_file="/a.pem", project="nlp", env=env)
    assert (cfg.url, cfg.token, cfg.ca_file, cfg.project) == ("http://h:1", "fgp_arg", "/a.pem", "nlp")
    assert (cfg.url_from, cfg.token_from, cfg.ca_from) == ("url argument", "token argument", "ca_file argument")


def test_bad_settings_are_reported(tmp_path: Path) -> None:
    with pytest.raises(fastgpu.InvalidRequest, match="must start with http:// or https:// .*from FASTGPU_SERVER"):
        config.resolve(env={"FASTGPU_SERVER": "ftp://x", "HOME": str(tmp_path)})
    with pytest.raises(fastgpu.InvalidRequest, match="has no host"):
        config.resolve(url="http://")
    write(tmp_path / "credentials.json", "{not json")
    with pytest.raises(fastgpu.InvalidRequest, match="credentials file is damaged; run `fastgpu login` again"):
        config.resolve(env={"FASTGPU_HOME": str(tmp_path)})
    with pytest.raises(fastgpu.InvalidRequest, match="cannot read the CA file"):
        fastgpu.Client("https://127.0.0.1:1", "t", ca_file=str(tmp_path / "missing.pem"))


def test_project_from_the_environment_is_used_for_submits(server: Server, client: fastgpu.Client,
                                                          new_project, monkeypatch: pytest.MonkeyPatch) -> None:
    project = new_project()
    monkeypatch.setenv("FASTGPU_HOME", str(server.home))
    monkeypatch.setenv("FASTGPU_PROJECT", project)
    with fastgpu.Client() as c:
        assert c.jobs.submit("true").project == project
        assert c.create_task("t", command="true").submit().job.project == project
        assert c.jobs.submit("true", project="default").project == "default"


@pytest.fixture(scope="module")
def tls_server() -> Iterator[Server]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    root = make_root("fastgpu-sdk-tls-")
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    s = Server(root, sim_gpus="1xA10-24GB", extra=["--tls-cert", str(cert), "--tls-key", str(key)],
               ca_file=str(cert)).start()
    try:
        yield s
    finally:
        s.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_tls_with_a_private_ca(tls_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    assert tls_server.url.startswith("https://")
    with tls_server.client() as c:  # ca_file=cert.pem
        assert c.whoami()["user"] == "admin"
        job = c.jobs.submit("echo over tls", gpus=0.5)
        assert list(c.jobs.logs(job, follow=True)) == ["over tls"]
    with fastgpu.Client(tls_server.url, tls_server.token, max_retries=3) as c:
        with pytest.raises(fastgpu.TLSError, match="not trusted.*ca_file= or set FASTGPU_CA"):
            c.whoami()
    monkeypatch.setenv("FASTGPU_HOME", str(tls_server.home))
    monkeypatch.setenv("FASTGPU_CA", tls_server.ca_file)
    with fastgpu.Client() as c:
        assert c.config.ca_from == "FASTGPU_CA"
        assert len(c.gpus.list()) == 1


def test_service_account_with_client_credentials(server: Server, client: fastgpu.Client, new_project,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    project = new_project()
    sa = client.projects.create_service_account(project, "ci", role="member")
    with fastgpu.Client(server.url, client_id=sa["client_id"], client_secret=sa["client_secret"]) as c:
        assert c.config.token_from == "client credentials (POST /oauth/token)"
        me = c.whoami()
        assert me["service_account"] is True
        job = c.jobs.submit("echo from ci")
        assert job.project == project  # its one project
        # An access token that stops working (expired, revoked) is replaced once, and the call goes through.
        c._transport._token = "fgp_no_longer_valid"
        assert c.jobs.wait(job, timeout=60).state == "SUCCEEDED"
        assert c._transport._token != "fgp_no_longer_valid"
    with pytest.raises(fastgpu.InvalidRequest, match="needs both client_id and client_secret"):
        fastgpu.Client(server.url, client_id=sa["client_id"], client_secret="", home=str(server.root / "none"))
    monkeypatch.setenv("FASTGPU_CLIENT_ID", sa["client_id"])
    monkeypatch.setenv("FASTGPU_CLIENT_SECRET", "wrong")
    with fastgpu.Client(server.url) as c:
        with pytest.raises(fastgpu.Unauthenticated, match="unknown client_id or wrong client_secret"):
            c.whoami()

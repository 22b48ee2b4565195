"""Typed exceptions per error code, carrying the server's message; a viewer's PermissionDenied."""
from __future__ import annotations

import datetime
import time

import pytest

import fastgpu
from conftest import Server


def test_not_found_carries_the_server_message(client: fastgpu.Client) -> None:
    with pytest.raises(fastgpu.NotFound) as e:
        client.jobs.get("j-999999")
    assert str(e.value) == "job j-999999 does not exist"
    assert (e.value.code, e.value.http_status) == ("not_found", 404)
    assert isinstance(e.value, fastgpu.APIError) and isinstance(e.value, fastgpu.FastGPUError)
    with pytest.raises(fastgpu.NotFound, match="project nope does not exist"):
        client.projects.get("nope")


def test_invalid_request_from_the_server(client: fastgpu.Client) -> None:
    with pytest.raises(fastgpu.InvalidRequest, match="priority") as e:
        client.jobs.submit("true", priority=101)
    assert e.value.http_status == 400 and e.value.code == "invalid_argument"
    with pytest.raises(fastgpu.InvalidRequest, match="workdir 'rel' is relative"):
        client.jobs.submit("true", workdir="rel")


def test_unschedulable(client: fastgpu.Client) -> None:
    with pytest.raises(fastgpu.Unschedulable) as e:
        client.jobs.submit("true", gpus=64)
    assert e.value.http_status == 422
    with pytest.raises(fastgpu.Unschedulable, match="H100"):
        client.jobs.submit("true", gpu_type="H100-80GB")


def test_conflict(client: fastgpu.Client, new_project) -> None:
    project = new_project()
    with pytest.raises(fastgpu.Conflict) as e:
        client.projects.create(project)
    assert isinstance(e.value, fastgpu.AlreadyExists) and e.value.http_status == 409
    job = client.jobs.submit("true")
    client.jobs.wait(job, timeout=60)
    with pytest.raises(fastgpu.Conflict):
        client.jobs.cancel(job)  # it has ended


def test_unauthenticated(server: Server) -> None:
    with server.client("fgp_not_a_token") as c:
        with pytest.raises(fastgpu.Unauthenticated, match="missing or invalid API token") as e:
            c.jobs.list(limit=1).__next__()
        assert e.value.http_status == 401
    with fastgpu.Client(server.url, home=str(server.root / "empty-home")) as c:
        assert c.config.token == ""
        with pytest.raises(fastgpu.Unauthenticated, match="no token was found: pass token=, set FASTGPU_TOKEN"):
            c.jobs.get("j-1")


def test_viewer_may_read_but_not_change(server: Server, client: fastgpu.Client, new_project, new_user) -> None:
    project = new_project()
    job = client.jobs.submit("sleep 120", project=project, runtime="5m")
    viewer_token = new_user(project, "viewer")
    with server.client(viewer_token) as viewer:
        assert viewer.jobs.get(job.id).id == job.id
        assert [j.id for j in viewer.jobs.list(project=project)] == [job.id]
        with pytest.raises(fastgpu.PermissionDenied) as e:
            viewer.jobs.cancel(job)
        assert e.value.http_status == 403 and e.value.message
        with pytest.raises(fastgpu.PermissionDenied):
            viewer.jobs.submit("true", project=project)
        with pytest.raises(fastgpu.PermissionDenied):
            viewer.secrets.set(project, "TOKEN", "x")
        # Other projects' jobs do not exist for them.
        other = client.jobs.submit("true")
        with pytest.raises(fastgpu.NotFound):
            viewer.jobs.get(other.id)
    assert client.jobs.cancel(job).id == job.id


def test_quota_exceeded_is_not_retried(server: Server, client: fastgpu.Client, new_project) -> None:
    project = new_project()
    client.projects.update(project, quota={"max_queued_jobs": 1, "max_gpus": {"A100-80GB": 1}})
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    waiting = client.jobs.submit("true", project=project, begin_at=later)
    assert waiting.state == "QUEUED"
    with server.client(backoff=30.0, max_backoff=30.0) as c:
        started = time.monotonic()
        with pytest.raises(fastgpu.QuotaExceeded, match="quota") as e:
            c.jobs.submit("true", project=project)
        assert time.monotonic() - started < 10.0  # not retried (a retry would back off 15-30 s)
    assert e.value.http_status == 429
    client.jobs.cancel(waiting)
    # A job larger than the project's GPU quota could never start: both Unschedulable and QuotaExceeded.
    with pytest.raises(fastgpu.QuotaExceeded, match="may hold at most") as e2:
        client.jobs.submit("true", project=project, gpus=2, gpu_type="A100-80GB")
    assert isinstance(e2.value, fastgpu.Unschedulable) and e2.value.http_status == 422


def test_no_route(client: fastgpu.Client) -> None:
    with pytest.raises(fastgpu.NotFound, match="no route"):
        client._transport.json("GET", "/v1/nothing-here")

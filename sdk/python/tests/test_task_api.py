"""The product description's API: Client(), create_task(name, compute, memory, runtime), submit(),
get_status(), result(), close(), __version__; its units and the arguments it cannot honour."""
from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest

import fastgpu
from conftest import SDK_DIR, Server


def test_version_is_the_distribution_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", fastgpu.__version__)
    text = (SDK_DIR / "pyproject.toml").read_text()
    assert 'name = "fastgpu-sdk"' in text
    assert "fastgpu._version.__version__" in text
    assert (SDK_DIR / "fastgpu" / "py.typed").exists()


def test_description_example_end_to_end(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    # Found like the CLI finds it: FASTGPU_HOME holds the URL and admin token that `fastgpu up` wrote.
    monkeypatch.setenv("FASTGPU_HOME", str(server.home))
    client = fastgpu.Client()
    task = client.create_task("deep_learning_task", compute="gpu", memory=1024, runtime=24,
                              command="echo training result; nvidia-smi >/dev/null 2>&1; echo done")
    task.submit()
    status = task.get_status()
    assert status in list(fastgpu.JobState)
    result = task.result(timeout=60)
    client.close()

    assert result.state == "SUCCEEDED" and result.succeeded, result
    assert result.exit_code == 0
    assert result.log_tail.splitlines() == ["training result", "done"]
    assert result.queued_seconds is not None and result.queued_seconds >= 0
    assert result.run_seconds is not None and result.run_seconds >= 0
    job = result.job
    assert job.name == "deep_learning_task"
    assert job.memory_mib == 1024  # MiB of GPU memory per GPU
    assert job.runtime_limit_s == 24 * 3600  # hours
    assert job.gpus == "1"
    with pytest.raises(fastgpu.ClientClosed):
        task.get_status()


def test_the_example_without_a_command_says_what_is_missing(client: fastgpu.Client) -> None:
    with pytest.raises(fastgpu.InvalidRequest, match=r"no command given.*command='python3 train.py'"):
        client.create_task("deep_learning_task", compute="gpu", memory=1024, runtime=24)


@pytest.mark.parametrize(
    "memory, mib",
    [(1024, 1024), ("16GiB", 16384), ("16G", 16384), ("512MiB", 512), ("1.5GiB", 1536), ("1TiB", 1 << 20)],
)
def test_memory_units(memory, mib) -> None:
    assert fastgpu.job_body("true", memory=memory)["memory_mib"] == mib


@pytest.mark.parametrize(
    "runtime, seconds",
    [(24, 86400), (0.5, 1800), ("2h", 7200), ("30m", 1800), ("1h30m", 5400), ("90s", 90), ("1d", 86400),
     (datetime.timedelta(minutes=5), 300)],
)
def test_runtime_units(runtime, seconds) -> None:
    assert fastgpu.job_body("true", runtime=runtime)["runtime_limit_s"] == seconds


@pytest.mark.parametrize(
    "kw, message",
    [({"memory": "16XB"}, "unknown unit 'xb'"), ({"memory": -1}, "negative"), ({"memory": "lots"}, "not a size"),
     ({"runtime": "2 fortnights"}, "unknown unit"), ({"runtime": "soon"}, "not a duration"),
     ({"runtime": 1e-9}, "whole number of seconds"), ({"gpus": 0}, "more than 0"), ({"gpus": 1.5}, "whole"),
     ({"gpus": 0.0001}, "3 decimals"), ({"env": {"N": 1}}, "must be strings")],
)
def test_bad_units_are_refused_before_sending(client: fastgpu.Client, kw, message) -> None:
    before = [j.id for j in client.jobs.list(limit=1)]
    with pytest.raises(fastgpu.InvalidRequest, match=message):
        client.create_task("bad", command="true", **kw)
    assert [j.id for j in client.jobs.list(limit=1)] == before


def test_units_reach_the_server(client: fastgpu.Client) -> None:
    task = client.create_task("units", memory="16GiB", runtime="2h", gpus=0.25, gpu_type="A100-80GB",
                              command=["sh", "-c", "echo $FOO"], env={"FOO": "bar"}).submit()
    job = task.job
    assert (job.memory_mib, job.runtime_limit_s, job.gpus, job.gpus_milli, job.gpu_type) == \
        (16384, 7200, "0.25", 250, "A100-80GB")
    assert task.result(timeout=60).log_tail == "bar"


def test_compute_cpu_is_refused_with_the_reason(client: fastgpu.Client) -> None:
    with pytest.raises(fastgpu.NotSupported, match="no CPU-only jobs.*gpus=0.01") as e:
        client.create_task("cpu", compute="cpu", command="true")
    assert e.value.feature == "CPU-only tasks"
    assert isinstance(e.value, fastgpu.InvalidRequest)
    with pytest.raises(fastgpu.InvalidRequest, match="compute must be 'gpu'"):
        client.create_task("tpu", compute="tpu", command="true")


@pytest.mark.parametrize("kw, feature", [({"sync": "./data"}, "file sync"), ({"sync": True}, "file sync")])
def test_image_and_sync_name_the_missing_feature(client: fastgpu.Client, kw, feature) -> None:
    with pytest.raises(fastgpu.NotSupported, match="not supported by the FastGPU server yet") as e:
        client.create_task("t", command="true", **kw)
    assert e.value.feature == feature


def test_image_goes_into_the_job_spec(client: fastgpu.Client) -> None:
    task = client.create_task("in-a-container", command="python3 train.py", image="localhost/train:1")
    assert task.spec["image"] == "localhost/train:1"
    assert "image" not in client.create_task("plain", command="true").spec


def test_submit_twice_is_one_job(client: fastgpu.Client) -> None:
    task = client.create_task("once", command="true")
    assert task.id is None and not task.submitted
    with pytest.raises(fastgpu.FastGPUError, match="has not been submitted"):
        task.get_status()
    first = task.submit().id
    assert task.submit().id == first
    assert sum(1 for j in client.jobs.list(limit=20) if j.name == "once") == 1


def test_result_of_a_failed_task(client: fastgpu.Client) -> None:
    task = client.create_task("fails", command="echo about to fail; exit 3").submit()
    result = task.result(timeout=60)
    assert (result.state, result.exit_code, result.reason) == ("FAILED", 3, "exit code 3")
    assert result.log_tail == "about to fail"
    with pytest.raises(fastgpu.JobFailed, match=r"ended FAILED: exit code 3") as e:
        task.result(timeout=60, raise_on_failure=True)
    assert e.value.result.exit_code == 3


def test_result_timeout_and_cancel(client: fastgpu.Client, shared_dir: Path) -> None:
    task = client.create_task("slow", command=f"touch {shared_dir}/started; sleep 120", runtime="5m").submit()
    with pytest.raises(fastgpu.WaitTimeout) as e:
        task.result(timeout=0.5)
    assert isinstance(e.value, TimeoutError)
    assert not e.value.job.terminal
    task.cancel()
    result = task.result(timeout=60)
    assert result.state == "CANCELLED"
    with pytest.raises(fastgpu.JobFailed, match="CANCELLED"):
        task.result(timeout=60, raise_on_failure=True)


def test_client_from_home_and_context_manager(server: Server) -> None:
    with fastgpu.Client(home=str(server.home)) as c:
        assert c.url == server.url
        assert c.config.token_from.endswith("admin.token")
        assert c.whoami()["user"] == "admin"
    assert c.closed
    with pytest.raises(fastgpu.ClientClosed):
        c.whoami()

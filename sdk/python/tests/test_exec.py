"""client.jobs.exec: a command inside a running job (docs/exec.md), against the real binary."""
from __future__ import annotations

import pytest

import fastgpu


def test_exec_runs_inside_the_job(client: fastgpu.Client) -> None:
    job = client.jobs.submit("sleep 300", name="exec-target")
    client.jobs.wait(job, timeout=60, until="running")
    try:
        code, out = client.jobs.exec(job, ["sh", "-c", "echo $FASTGPU_JOB_ID; echo err >&2; exit 3"])
        assert code == 3
        assert out.splitlines() == [job.id, "err"]
        code, out = client.jobs.exec(job, "cat; echo", stdin=b"hello")
        assert (code, out) == (0, "hello\n")
    finally:
        client.jobs.cancel(job)
    client.jobs.wait(job, timeout=60)
    with pytest.raises(fastgpu.Conflict):
        client.jobs.exec(job, "true")

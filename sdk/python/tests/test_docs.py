"""Every ```python block of docs/sdk.md runs, in order, against the test server, as a user would run it."""
from __future__ import annotations

import contextlib
import io
import re

import pytest

from conftest import REPO_DIR, Server

DOC = REPO_DIR / "docs" / "sdk.md"


def blocks() -> list:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


def test_docs_examples_run(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    if not DOC.exists():
        pytest.skip(f"{DOC} is not here (an installed copy of the tests)")
    code = blocks()
    assert len(code) >= 3
    monkeypatch.setenv("FASTGPU_HOME", str(server.home))
    namespace: dict = {"__name__": "__doc__"}
    outputs = []
    for i, block in enumerate(code):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, f"{DOC}:block{i + 1}", "exec"), namespace)
        outputs.append(out.getvalue())
    # The task API example prints what the page says it prints.
    assert outputs[0] == "SUCCEEDED 0 training result\n"
    assert re.match(r"task 'flaky' \(job j-\d+\) ended FAILED: exit code 3\nloading\n$", outputs[1]), outputs[1]
    assert "step 1\nstep 2\nstep 3\nSUCCEEDED 0 " in outputs[2]
    assert "not_found 404 job j-999999 does not exist\n" in outputs[3]

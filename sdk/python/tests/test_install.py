"""`pip install ./sdk/python` works offline (Debian's setuptools, no build isolation, no index) in a venv."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SDK_DIR


def run(args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)


def test_pip_install_into_a_venv(tmp_path: Path) -> None:
    for module in ("venv", "ensurepip", "setuptools", "wheel"):
        probe = run([sys.executable, "-c", f"import {module}"])
        if probe.returncode != 0:
            pytest.skip(f"{sys.executable} has no {module} (apt-get install python3-venv python3-setuptools "
                        "python3-wheel python3-pip)")
    # Build from a copy: the build writes build/ and *.egg-info next to the sources.
    src = tmp_path / "src"
    shutil.copytree(SDK_DIR, src, ignore=shutil.ignore_patterns("tests", "__pycache__", "build", "*.egg-info"))
    venv = tmp_path / "venv"
    made = run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
    assert made.returncode == 0, made.stderr
    py = str(venv / "bin" / "python")
    if run([py, "-m", "pip", "--version"]).returncode != 0:
        pytest.skip("the venv has no pip (apt-get install python3-pip)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_INDEX_URL")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    installed = run([py, "-m", "pip", "install", "--no-build-isolation", "--no-index", str(src)], env=env, cwd=tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    shown = run([py, "-m", "pip", "show", "fastgpu-sdk"], env=env, cwd=tmp_path)
    assert shown.returncode == 0 and "Name: fastgpu-sdk" in shown.stdout, shown.stdout + shown.stderr
    probe = run([py, "-c", "import fastgpu, os; print(fastgpu.__version__); print(fastgpu.__file__); "
                 "print(os.path.exists(os.path.join(os.path.dirname(fastgpu.__file__), 'py.typed')))"],
                env=env, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    version, path, typed = probe.stdout.split()
    sys.path.insert(0, str(SDK_DIR))
    import fastgpu

    assert version == fastgpu.__version__
    assert path.startswith(str(venv)), path  # the installed copy, not the source tree
    assert typed == "True"

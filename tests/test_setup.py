"""Set-up: `make run` installs only the app's dependencies, and the demo load prints its progress."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from seeds.loader import ProgressLine

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_installs_the_app_without_the_test_tools(tmp_path):
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    out = subprocess.run(["make", "-n", "run"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    installs = [line for line in out.splitlines() if "pip install" in line and "-e" in line]
    assert installs and all("[test]" not in line for line in installs), out
    test = subprocess.run(["make", "-n", "test"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert "'.[test]'" in test


def test_demo_load_progress_is_printed_per_partner_and_quarter():
    out = io.StringIO()  # not a terminal: whole lines, for logs
    progress = ProgressLine(out)
    for done in range(0, 1001, 100):
        progress("Nordic Docs AS", 1, 2, done, 1000)
    progress("Alpen Software GmbH", 2, 2, 0, 0)
    assert out.getvalue().splitlines() == [
        "  partner 1/2 Nordic Docs AS: 0/1,000 usage events (0 %)",
        "  partner 1/2 Nordic Docs AS: 300/1,000 usage events (30 %)",
        "  partner 1/2 Nordic Docs AS: 500/1,000 usage events (50 %)",
        "  partner 1/2 Nordic Docs AS: 800/1,000 usage events (80 %)",
        "  partner 1/2 Nordic Docs AS: 1,000/1,000 usage events (100 %)",
        "  partner 2/2 Alpen Software GmbH: 0/0 usage events (100 %)",
    ]

"""The guard rails of CI: ruff and mypy --strict keep consult/ clean, and run with the ordinary test suite.

Their configuration is pyproject.toml ([tool.ruff], [tool.mypy]); a finding fails the test with
the tool's own report.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULE_SETS = {"E", "F", "W", "I", "B", "UP", "SIM", "RUF", "ASYNC", "C90"}


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, input=stdin, capture_output=True, text=True)


def test_ruff_finds_nothing_in_consult():
    result = _run("ruff", "check", "--no-cache", "consult")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_finds_nothing_in_consult():
    result = _run("mypy", "consult")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_strict_everywhere():
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert mypy["strict"] is True
    assert "overrides" not in mypy, "a module is relaxed"


def test_mypy_with_this_configuration_refuses_a_finding(tmp_path):
    """The guard rail is live: an unannotated function is an error under the project's settings."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f(x):\n    return x\n", encoding="utf-8")
    result = _run("mypy", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / "cache"),
                  str(probe))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[no-untyped-def]" in result.stdout, result.stdout


def test_ruff_checks_the_agreed_rule_sets():
    lint = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]["lint"]
    assert RULE_SETS <= set(lint["select"])
    assert not lint.get("ignore"), "a rule is switched off for the whole code base"


def test_ruff_with_this_configuration_refuses_a_finding():
    """The guard rail is live: the project's configuration reports what it should."""
    probe = "import os\n\n\nasync def f(path):\n    return open(path).read()\n"
    result = _run("ruff", "check", "--no-cache", "--stdin-filename", "consult/probe.py", "-", stdin=probe)
    assert result.returncode == 1, result.stdout + result.stderr
    for code in ("F401", "ASYNC230"):
        assert code in result.stdout, result.stdout

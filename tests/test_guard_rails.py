"""The guard rails of CI: ruff, mypy --strict and vulture keep consult/ clean, ESLint keeps the browser app
(web/js) and the browser tests' Node helpers clean, and all run with the ordinary test suite.

Their configuration is pyproject.toml ([tool.ruff], [tool.mypy], [tool.vulture]) and eslint.config.js; a finding
fails the test with the tool's own report. ESLint comes from npm (package.json, `npm ci`): without
it the ESLint tests skip, and with CI set they fail instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULE_SETS = {"E", "F", "W", "I", "B", "UP", "SIM", "RUF", "ASYNC", "C90"}
ESLINT = ROOT / "node_modules" / ".bin" / "eslint"
ESLINT_TARGETS = ("web/js", "tests/web")
# Rules that catch real bugs in the browser app, on top of @eslint/js's recommended set.
ESLINT_RULES = {"no-undef", "no-unused-vars", "no-unreachable", "eqeqeq", "no-implicit-globals", "prefer-const",
                "no-var", "no-use-before-define", "no-useless-assignment", "no-promise-executor-return"}


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, input=stdin, capture_output=True, text=True)


def test_ruff_finds_nothing_in_consult():
    result = _run("ruff", "check", "--no-cache", "consult")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_finds_nothing_in_consult():
    result = _run("mypy", "consult")
    assert result.returncode == 0, result.stdout + result.stderr


def test_vulture_finds_no_dead_code_in_consult():
    """Unused imports, variables and arguments, and unreachable code ([tool.vulture] in pyproject.toml)."""
    result = _run("vulture")
    assert result.returncode == 0, result.stdout + result.stderr


def test_vulture_with_this_configuration_refuses_dead_code(tmp_path):
    """The guard rail is live: what the project's confidence threshold keeps is still reported."""
    vulture = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["vulture"]
    assert vulture["paths"] == ["consult"] and vulture["min_confidence"] <= 90
    probe = tmp_path / "probe.py"
    probe.write_text("import os\n\n\ndef f(x, unused):\n    total = x\n    return x\n    print(total)\n",
                     encoding="utf-8")
    result = _run("vulture", str(probe))
    assert result.returncode == 3, result.stdout + result.stderr
    for finding in ("unused import 'os'", "unused variable 'unused'", "unreachable code after 'return'"):
        assert finding in result.stdout, result.stdout


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


def _eslint(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    missing = [what for what, absent in (("node", shutil.which("node") is None),
                                         ("node_modules/.bin/eslint (npm ci)", not ESLINT.exists())) if absent]
    if missing:
        message = "the ESLint guard rail needs " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message + " — CI must install them (.ci/run)", pytrace=False)
        pytest.skip(message)
    return subprocess.run([str(ESLINT), "--no-config-lookup", "--config", str(ROOT / "eslint.config.js"), *args],
                          cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=300)


def test_eslint_finds_nothing_in_the_browser_app():
    result = _eslint("--max-warnings", "0", *ESLINT_TARGETS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_eslint_lints_every_script_of_the_browser_app():
    """No file of web/js or of the browser tests' Node helpers is ignored by the configuration."""
    scripts = sorted(p for target in ESLINT_TARGETS for p in (ROOT / target).rglob("*")
                     if p.suffix in {".js", ".mjs"})
    assert any(p.suffix == ".mjs" for p in scripts) and len(scripts) > 10, scripts
    result = _eslint("--format", "json", *ESLINT_TARGETS)
    linted = {Path(entry["filePath"]) for entry in json.loads(result.stdout)}
    assert linted == set(scripts), sorted(set(scripts) ^ linted)


def test_eslint_checks_the_agreed_rules_as_errors():
    for target in ("web/js/main.js", "tests/web/oidc_provider.mjs"):
        result = _eslint("--print-config", target)
        assert result.returncode == 0, result.stdout + result.stderr
        rules = json.loads(result.stdout)["rules"]
        off = {rule for rule in ESLINT_RULES if rules.get(rule, [0])[0] != 2}
        assert not off, f"{target}: {sorted(off)} are not errors"
        assert rules["eqeqeq"][1:] == ["smart"], rules["eqeqeq"]


def test_eslint_with_this_configuration_refuses_a_finding():
    """The guard rail is live: the browser app's configuration reports bugs, one line each."""
    probe = ("let count = 1;\n"
             "if (count == \"1\") total = 2;\n"
             "export function f() {\n  return 1;\n  count = 3;\n}\n"
             "export function g() {\n  let fixed = 4;\n  const unused = fixed;\n}\n")
    result = _eslint("--stdin", "--stdin-filename", "web/js/probe.js", stdin=probe)
    assert result.returncode == 1, result.stdout + result.stderr
    for rule in ("eqeqeq", "no-undef", "no-unreachable", "prefer-const", "no-unused-vars"):
        assert rule in result.stdout, result.stdout
    browser_globals = "export function h() {\n  return [document, window.location, fetch];\n}\n"
    result = _eslint("--stdin", "--stdin-filename", "web/js/probe.js", stdin=browser_globals)
    assert result.returncode == 0, result.stdout + result.stderr


# The project speaks only of itself: a reader of the code and the documents finds everything they
# refer to in the repository (the capability areas and contracts are in docs/capabilities.md).
OWN_WORDS = ("consult", "web", "policies", "docs", "README.md", "SECURITY.md")
OUTSIDE_REFERENCE = re.compile(
    r"\bSPEC\b"  # an outside specification by section (C4, §5, ...)
    r"|(?i:\b(?:SPEC|STYLE)\.md\b"  # documents kept beside the repository
    r"|(?:\.\./)+shared\b|/work/(?:shared|main|wt)\b"  # and the paths to them
    r"|\bresearch[ _-]notes?\b"
    r"|\b(?:issue|pull request|PR)\s*#\s*\d+|\bissue\s+\d+\b)"  # the tracker's threads
)


def _outside_references(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # images
            continue
        for number, line in enumerate(text.splitlines(), 1):
            found += [f"{path.name}:{number}: {m.group(0)}" for m in OUTSIDE_REFERENCE.finditer(line)]
    return found


def test_code_and_documents_refer_to_nothing_outside_the_repository():
    paths = [p for name in OWN_WORDS for p in ([ROOT / name] if (ROOT / name).is_file()
                                               else sorted((ROOT / name).rglob("*")))
             if p.is_file() and "__pycache__" not in p.parts]
    assert len(paths) > 200 and ROOT / "docs" / "capabilities.md" in paths
    assert _outside_references(paths) == []


def test_the_outside_reference_check_is_live(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("# Retention (SPEC C4).\n# See ../shared/STYLE.md, Issue #12 and the research notes.\n"
                     "GDPR_SPECIAL_ARTICLES = 1  # RFC 9162, the C2SP spec, an issuer, issues tokens\n",
                     encoding="utf-8")
    assert _outside_references([probe]) == [
        "probe.py:1: SPEC", "probe.py:2: ../shared", "probe.py:2: STYLE.md", "probe.py:2: Issue #12",
        "probe.py:2: research notes"]

"""The systemd unit, its environment file and the container file of deploy/, checked as far as this
machine can without systemd running or a container build (tests/test_deploy_nginx.py runs the
nginx site for real).

- The unit: `systemd-analyze verify` when it is installed (skipped otherwise) must accept it
  without one diagnostic, and it must run the service as its own user from /var/lib/konsulta,
  with `consult db upgrade` before `consult serve`.
- The environment file: `consult config check` accepts it as it is and reads every value in it.
- The container file: parsed; it installs the package, runs as a non-root user, copies only what
  exists and the build context lets through, and its command — run here with the image's own
  environment, only the data directory and port moved — upgrades an empty data directory,
  serves, and satisfies the image's health check.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

UNIT = ROOT / "deploy" / "systemd" / "konsulta.service"
ENV_FILE = ROOT / "deploy" / "systemd" / "konsulta.env"
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
INSTALLED = "/opt/konsulta/bin/consult"
DATA_DIR = "/var/lib/konsulta"


def _consult_shim(directory: Path) -> Path:
    """An executable `consult` that runs this checkout's code with this interpreter."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "consult"
    root, python = shlex.quote(str(ROOT)), shlex.quote(sys.executable)
    shim.write_text(f'#!/bin/sh\nPYTHONPATH={root} exec {python} -m consult "$@"\n')
    shim.chmod(0o755)
    return shim


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- systemd ------------------------------------------------------------------------------------


def _unit() -> dict[str, list[str]]:
    """``Section.Key`` → every value, in order (a unit may repeat a key)."""
    entries: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return entries


def test_systemd_unit_runs_the_service_unprivileged_from_its_data_directory() -> None:
    unit = _unit()
    assert unit["Service.User"] == ["konsulta"] and unit["Service.Group"] == ["konsulta"]
    assert f"CONSULT_DATA_DIR={DATA_DIR}" in unit["Service.Environment"]
    assert unit["Service.StateDirectory"] == ["konsulta"]  # systemd creates /var/lib/konsulta for the user
    assert unit["Service.WorkingDirectory"] == [DATA_DIR]
    assert unit["Service.ExecStartPre"] == [f"{INSTALLED} db upgrade"]
    assert unit["Service.ExecStart"] == [f"{INSTALLED} serve"]
    assert unit["Service.RestartPreventExitStatus"] == ["2"]  # a configuration error is not retried
    assert unit["Service.NoNewPrivileges"] == ["yes"] and unit["Service.ProtectSystem"] == ["strict"]
    assert unit["Service.CapabilityBoundingSet"] == [""]
    assert unit["Install.WantedBy"] == ["multi-user.target"]
    # The commands exist: each is a subcommand the installed `consult` knows.
    for command in (*unit["Service.ExecStartPre"], *unit["Service.ExecStart"]):
        args = command.split()[1:]
        done = subprocess.run([sys.executable, "-m", "consult", *args, "--help"], cwd=ROOT,
                              env=_clean_env(PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (command, done.stderr)


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    text = UNIT.read_text()
    assert text.count(INSTALLED) == 2
    # verify checks that the commands are executables: point them at this checkout's `consult`.
    unit = tmp_path / "konsulta.service"
    unit.write_text(text.replace(INSTALLED, str(_consult_shim(tmp_path / "bin"))))
    done = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=120)
    diagnostics = [line for line in (done.stdout + done.stderr).splitlines() if "konsulta" in line]
    assert done.returncode == 0 and not diagnostics, done.stdout + done.stderr


def _env_file() -> dict[str, str]:
    values = {}
    for raw in ENV_FILE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and key.startswith("CONSULT_"), line
            values[key] = value
    return values


def test_environment_file_is_a_configuration_the_service_accepts(tmp_path: Path) -> None:
    values = _env_file()
    assert values["CONSULT_TRUSTED_PROXIES"] == "127.0.0.1/32"
    done = subprocess.run([sys.executable, "-m", "consult", "config", "check"], cwd=tmp_path, timeout=60,
                          env=_clean_env(PYTHONPATH=str(ROOT), CONSULT_DATA_DIR=str(tmp_path / "data"), **values),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    effective = done.stdout.splitlines()
    for key, value in values.items():
        assert f"{key}={value}" in effective, f"{key} is not a setting, or not read as written"


# -- the container file -------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in CONTAINERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        result.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "a continuation line ends the file"
    return result


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def _image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in _final_stage():
        if keyword == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def _exec_form(keyword: str) -> list[str]:
    found = [args for k, args in _final_stage() if k == keyword]
    assert found, f"no {keyword}"
    if keyword == "HEALTHCHECK":
        found = [found[-1][found[-1].index("CMD") + 3:].strip()]
    command = json.loads(found[-1])
    assert isinstance(command, list) and all(isinstance(a, str) for a in command), "exec form expected"
    return command


def test_containerfile_installs_the_package_and_runs_as_non_root() -> None:
    instructions = _instructions()
    runs = " ".join(args for keyword, args in instructions if keyword == "RUN")
    assert "pip install" in runs and "--constraint constraints.txt ." in runs
    final = _final_stage()
    assert ("COPY", "--from=build /opt/konsulta /opt/konsulta") in final
    users = [args for keyword, args in final if keyword == "USER"]
    assert users, "the image must name its user"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) != 0 and group.isdigit() and int(group) != 0, users[-1]
    env = _image_env()
    assert env["CONSULT_DATA_DIR"] == DATA_DIR
    assert ("VOLUME", DATA_DIR) in final
    assert ("EXPOSE", env["CONSULT_PORT"]) in final
    command = " ".join(_exec_form("CMD"))
    assert "consult db upgrade && exec consult serve" in command


def test_containerfile_copies_only_what_exists_and_the_context_lets_through() -> None:
    allowed = {line[1:].strip() for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")}
    rules = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "the context starts from nothing"
    sources = []
    for keyword, args in _instructions():
        if keyword in ("COPY", "ADD") and not args.startswith("--from"):
            sources += shlex.split(args)[:-1]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert source in allowed, f"COPY {source}: excluded by .dockerignore"
    # What the package build reads is all copied (setup.py bundles policies/ and web/).
    assert {"pyproject.toml", "setup.py", "consult", "policies", "web", "constraints.txt"} <= set(sources)


def test_container_command_serves_from_an_empty_data_directory(tmp_path: Path) -> None:
    """The image's CMD and HEALTHCHECK with the image's environment; only what cannot be the same
    on a shared machine differs: the data directory, the port, loopback instead of every
    interface, and the development issuer instead of an identity provider."""
    bin_dir = tmp_path / "bin"
    _consult_shim(bin_dir)
    data = tmp_path / "data"
    port = _free_port()
    env = _clean_env(**{k: v for k, v in _image_env().items() if k != "PATH"})
    env.update(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", CONSULT_DATA_DIR=str(data),
               CONSULT_PORT=str(port), CONSULT_HOST="127.0.0.1", CONSULT_DEV="1")
    command = _exec_form("CMD")
    with (tmp_path / "serve.log").open("w") as log:
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "not ready: " + (tmp_path / "serve.log").read_text()[-4000:]
            time.sleep(0.3)
        # Everything the service keeps is in the data directory (the image's volume).
        assert {"konsulta.db", "keys.json", "audit-signing.key"} <= {p.name for p in data.iterdir()}
        health = _exec_form("HEALTHCHECK")
        health[0] = sys.executable if health[0] == "python" else health[0]
        checked = subprocess.run(health, env=env, capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
    finally:
        proc.send_signal(signal.SIGTERM)  # `exec`: the service itself gets the runtime's signal
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, (tmp_path / "serve.log").read_text()[-4000:]

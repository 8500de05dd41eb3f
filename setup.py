"""The one build step pyproject.toml cannot say: the repository keeps the policies and the web app
at its top level (``policies/``, ``web/``), and the wheel carries copies of them inside the package,
as ``consult/_bundled/policies`` and ``consult/_bundled/web`` (read by ``consult.bundled``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLED = ("policies", "web")


class BuildWithBundled(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's own directories
            return
        here = Path(__file__).resolve().parent
        for name in BUNDLED:
            source = here / name
            if not source.is_dir():
                raise SystemExit(f"build: {source} is missing; the package needs it")
            target = Path(self.build_lib) / "consult" / "_bundled" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


setup(cmdclass={"build_py": BuildWithBundled})

"""Where the policies and the web app that ship with the code are: inside the installed package
(``consult/_bundled/``, put there by the wheel build from the repository's top-level ``policies/``
and ``web/``), read through ``importlib.resources``; in a source checkout, those directories.

``CONSULT_POLICY_DIR`` and ``CONSULT_WEB_DIR`` override both (``consult.config``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: The directories the wheel carries; the names are the repository's own.
POLICIES = "policies"
WEB = "web"
PACKAGED_UNDER = "_bundled"


def bundled_dir(name: str) -> Path:
    """The absolute directory of ``name`` (``policies`` or ``web``) that ships with this code.

    The packaged copy wins; a source checkout (the package beside ``pyproject.toml``) falls back to
    its top-level directory. Returns the packaged location even when neither exists, so an error
    names where the installed package should have it.
    """
    packaged = resources.files("consult").joinpath(PACKAGED_UNDER, name)
    packaged_path = Path(str(packaged))
    if isinstance(packaged, Path) and packaged_path.is_dir():
        return packaged_path.resolve()
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / name).is_dir():
        return checkout / name
    return packaged_path

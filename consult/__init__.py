"""Konsulta: secure consultations between Kela and municipalities."""

#: The one place the version is written; ``pyproject.toml`` reads it from here.
__version__ = "0.1.0"

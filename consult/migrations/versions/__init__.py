"""Revision scripts (loaded by Alembic from their files; a package so the import contracts see them)."""

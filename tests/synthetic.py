"""Synthetic identity codes for tests: valid checksums, temporary individual numbers (900–999),
so they can never be a real person's code."""

from __future__ import annotations

CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def hetu(n: int = 0, *, birth: str = "010190", sign: str = "-") -> str:
    """The n-th synthetic HETU (0 ≤ n < 100) for a birth date ``ddmmyy``."""
    individual = 900 + n % 100
    return f"{birth}{sign}{individual}{CHECK[int(f'{birth}{individual}') % 31]}"

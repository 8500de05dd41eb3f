"""Property and fuzz tests are deterministic: the same examples on every run (tests/conftest.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st


def _examples() -> list[object]:
    seen: list[object] = []

    @settings(max_examples=25)
    @given(st.text(), st.integers())
    def record(text: str, number: int) -> None:
        seen.append((text, number))

    record()
    return seen


def test_the_loaded_hypothesis_profile_is_derandomised_and_keeps_no_database():
    assert settings.default.derandomize is True
    assert settings.default.database is None


def test_the_thorough_profile_draws_the_same_examples_only_more_of_them():
    thorough = settings.get_profile("thorough")
    assert thorough.derandomize is True and thorough.database is None
    assert thorough.max_examples > settings.get_profile("konsulta").max_examples


def test_two_runs_of_a_property_see_the_same_examples():
    assert _examples() == _examples()

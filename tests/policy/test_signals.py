"""Signals of sensitive categories in free text (policies/signals.toml): the loader validates
the file, naming file and line, and the pure detector finds inflected Finnish and Swedish forms
with the span of each passage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from consult.policy.loader import PolicyError, load_policy
from consult.policy.signals import SignalDetector

from .support import POLICY_DIR, shipped_policy

SIGNALS = "signals.toml"


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    for path in POLICY_DIR.glob("*.toml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


@pytest.fixture(scope="module")
def detector() -> SignalDetector:
    return SignalDetector(shipped_policy().signals)


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line(path: Path, needle: str) -> int:
    text = path.read_text(encoding="utf-8")
    return text.count("\n", 0, text.index(needle)) + 1


def _error(directory: Path) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        load_policy(directory)
    return info.value


def _found(detector: SignalDetector, text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in detector.detect(text):
        out.setdefault(p.category, []).append(text[p.start:p.end])
    return out


# -- the file ---------------------------------------------------------------------------------

def test_shipped_signals_cover_the_categories_withheld_across_organisations():
    cats = {c.category for c in shipped_policy().signals.categories}
    assert cats == {"decision.content", "child_welfare", "health", "debt", "housing.risk",
                    "social_work.assessment"}
    for c in shipped_policy().signals.categories:
        assert c.words["fi"] or c.near["fi"], c.category
        assert c.words["sv"] or c.near["sv"], c.category


def test_signals_are_part_of_the_policy_version(policy_dir):
    before = load_policy(policy_dir).version
    _replace(policy_dir / SIGNALS, '"*lastensuojel",', '"*lastensuojel", "lasunen",')
    assert load_policy(policy_dir).version != before


def test_unknown_category_is_a_load_error_naming_file_and_line(policy_dir):
    path = policy_dir / SIGNALS
    _replace(path, '[signals."debt"]\n', '[signals."debts"]\n')
    _replace(path, '[signals."debt".fi]', '[signals."debts".fi]')
    _replace(path, '[signals."debt".sv]', '[signals."debts".sv]')
    err = _error(policy_dir)
    assert err.file == SIGNALS and "unknown category 'debts'" in err.message
    assert err.line == _line(path, '[signals."debts"]')


def test_identity_code_has_no_signals_it_is_found_by_the_scanner(policy_dir):
    with (policy_dir / SIGNALS).open("a", encoding="utf-8") as fh:
        fh.write('\n[signals."identity.hetu".fi]\nwords = ["henkilötunnus"]\n')
    assert "unknown category 'identity.hetu'" in _error(policy_dir).message


@pytest.mark.parametrize("old, new, message", [
    ('"*lastensuojel",', '"*Lastensuojel",', "is not a stem"),
    ('"*lastensuojel",', '"l",', "is not a stem"),
    ('"*lastensuojel",', '"lasten  suojelu",', "single spaces"),
    ('"*lastensuojel",', '"lapsen asiat ovat nyt lastensuojelussa",', "never a sentence"),
    ('["sijoit", "kodin', '["kodin', "2 to 4 terms"),
    ("window = 6", "window = 40", "window must be"),
    ("regex = '(?<!", "regex = '(?<!(", "invalid regex"),
    ('description = "Debts,', 'descripton = "Debts,', "unknown key 'descripton'"),
])
def test_malformed_signals_are_load_errors(policy_dir, old, new, message):
    _replace(policy_dir / "signals.toml", old, new)
    err = _error(policy_dir)
    assert err.file == SIGNALS and message in err.message and err.line is not None


def test_the_same_category_in_two_signals_files_is_rejected(policy_dir):
    (policy_dir / "signals-extra.toml").write_text(
        '[meta]\nkind = "signals"\n\n[signals."debt".fi]\nwords = ["velka"]\n', encoding="utf-8")
    err = _error(policy_dir)
    assert "signals for 'debt' are already in" in err.message


def test_a_policy_without_signals_does_not_load(policy_dir):
    """Free text to another organisation is always checked: dropping the file is an error,
    not a silent end of the check."""
    (policy_dir / SIGNALS).unlink()
    assert "a signals file" in str(_error(policy_dir))


# -- the detector -----------------------------------------------------------------------------

def test_the_issue_example_is_flagged_with_every_category_and_span(detector):
    text = "perusosaa alennettu 20 %, asiakkaalla skitsofrenia ja lastensuojelun asiakkuus"
    found = _found(detector, text)
    assert found == {"decision.content": ["perusosaa alennettu 20 %"],
                     "health": ["skitsofrenia"], "child_welfare": ["lastensuojelun"]}


@pytest.mark.parametrize("text, category", [
    ("Perusosan alentaminen jatkuu.", "decision.content"),
    ("Alensimme perusosaa kahdella kymmenyksellä.", "decision.content"),
    ("Perusosa alennetaan 40 %:lla.", "decision.content"),
    ("Grunddelen sänktes.", "decision.content"),
    ("Nedsättningen av grunddelen fortsätter.", "decision.content"),
    ("Lastensuojeluilmoitus tehtiin eilen.", "child_welfare"),
    ("Perhe on lastensuojelun asiakas.", "child_welfare"),
    ("Barnskyddsanmälan gjordes.", "child_welfare"),
    ("Asiakas on ulosotossa.", "debt"),
    ("Ulosottoon meni kolmannes.", "debt"),
    ("Palkanulosotto alkoi.", "debt"),
    ("Klienten har utsökningsskulder.", "debt"),
    ("Asiakkaalla on masennus.", "health"),
    ("Masennuksen vuoksi hän ei jaksa.", "health"),
    ("Dg F20.0", "health"),
    ("Diagnos: F32", "health"),
    ("Häätö on vireillä.", "housing.risk"),
    ("Vräkningen verkställs.", "housing.risk"),
    ("Palvelutarpeen arvioinnissa todettiin tuen tarve.", "social_work.assessment"),
])
def test_inflected_forms_are_found(detector, text, category):
    assert category in _found(detector, text)


@pytest.mark.parametrize("text", [
    "Päätös on voimassa 31.3. asti.",
    "Beslutet gäller till och med den 31 mars.",
    "Hakemus on käsittelyssä.",
    "Asuu Kielotie 5 B23, rappu B.",
    "Lomake TO1 ja liite Y51/2024.",
    "Onko asiakas hakenut sairauspäivärahaa?",
    "Har klienten ansökt om sjukdagpenning?",
    "Paljonko perusosa on tänä vuonna?",
    "Voiko palvelupisteessä asioida ruotsiksi?",
])
def test_ordinary_text_and_permitted_facts_are_not_flagged(detector, text):
    assert detector.detect(text) == []


def test_spans_point_into_the_original_text_past_invisible_characters(detector):
    text = "Tiedoksi: lasten\u00adsuojelun asiakkuus alkoi."
    [passage] = detector.detect(text)
    assert passage.category == "child_welfare"
    assert text[passage.start:passage.end] == "lasten\u00adsuojelun"


def test_case_is_ignored_and_the_icd_pattern_is_case_sensitive(detector):
    assert "child_welfare" in _found(detector, "LASTENSUOJELU")
    assert "health" in _found(detector, "koodi F32.1")
    assert detector.detect("koodi f32.1") == []


def test_a_passage_names_the_signal_not_the_text(detector):
    [passage] = detector.detect("Asiakas on ulosotossa.")
    assert passage.signal.startswith("fi:") and "ulosot" in passage.signal
    assert "ulosotossa" not in passage.signal


def test_detection_is_pure(detector):
    text = "Asiakkaalla on velkaa ja häätöuhka."
    assert detector.detect(text) == detector.detect(text) == SignalDetector(
        shipped_policy().signals).detect(text)

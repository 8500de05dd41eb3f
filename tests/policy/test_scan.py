"""The free-text identifier scanner: real validators, no false positives on ordinary text.
All identity codes here are synthetic, generated with a correct or a deliberately wrong
check character."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings, strategies as st
from stdnum.fi import hetu as stdnum_hetu

from consult.policy.scan import Finding, redact, scan
from tests.conftest import examples

from .support import CENTURY_SIGNS, synthetic_hetu, wrong_check

ALL_SIGNS = [(year, sign) for year, signs in ((1850, "+"), (1950, "-YXWVU"), (2010, "ABCDEF"))
             for sign in signs]


def kinds(text: str) -> list[str]:
    return [f.kind for f in scan(text)]


def spans(text: str) -> list[str]:
    return [text[f.start:f.end] for f in scan(text)]


# -- identity codes ------------------------------------------------------------------------

@pytest.mark.parametrize(("year", "sign"), ALL_SIGNS)
def test_installed_stdnum_validates_every_century_sign(year, sign):
    """The scanner relies on stdnum.fi.hetu for the 2023 century signs; pin that it has them."""
    assert stdnum_hetu.is_valid(synthetic_hetu(14, 7, year, 123, sign))


@pytest.mark.parametrize(("year", "sign"), ALL_SIGNS)
def test_valid_hetu_with_every_century_sign_is_found(year, sign):
    code = synthetic_hetu(14, 7, year, 123, sign)
    text = f"Asiakkaan tunnus on {code}, soita takaisin."
    assert scan(text) == [Finding("hetu", 20, 31)]
    assert spans(text) == [code]


@pytest.mark.parametrize(("year", "sign"), ALL_SIGNS)
def test_hetu_with_wrong_check_character_is_not_a_finding(year, sign):
    code = wrong_check(synthetic_hetu(14, 7, year, 123, sign))
    assert scan(f"Asiakkaan tunnus on {code}, soita takaisin.") == []


def test_century_sign_must_match_the_century_for_the_date():
    # 29 February exists in 2000 but not in 1900: the century sign decides the date.
    leap = synthetic_hetu(29, 2, 2000, 234, "A")
    assert kinds(leap) == ["hetu"]
    assert kinds(leap[:6] + "-" + leap[7:]) == []


@pytest.mark.parametrize("code", ["310252-308Y", "320152-3084", "131352-308T", "131052-000V",
                                  "131052-001W", "131052Z308T", "131052-308G"])
def test_impossible_codes_are_not_findings(code):
    assert scan(f"tunnus {code}") == []


def test_temporary_identity_codes_are_found():
    assert kinds(synthetic_hetu(1, 1, 1990, 912, "-")) == ["hetu"]


def test_lower_case_century_sign_and_check_character_are_found():
    code = synthetic_hetu(3, 4, 2005, 456, "B").lower()
    assert kinds(f"tunnus {code}") == ["hetu"]


def test_hetu_glued_to_letters_or_digits_is_not_found_but_punctuation_is_fine():
    code = synthetic_hetu(14, 7, 1980, 321)
    assert scan(f"X{code}") == [] and scan(f"{code}9") == []
    assert kinds(f"(hetu:{code}).") == ["hetu"]
    assert kinds(f"hetu_{code}") == ["hetu"]


valid_dates = st.dates(date(1800, 1, 1), date(2099, 12, 31))


@settings(max_examples=examples(100, 1000), deadline=None)
@given(valid_dates, st.integers(2, 999), st.data())
def test_hetu_is_never_also_a_phone_number(day, individual, data):
    sign = data.draw(st.sampled_from(CENTURY_SIGNS[day.year // 100 * 100]))
    code = synthetic_hetu(day.day, day.month, day.year, individual, sign)
    text = f"soita {code} huomenna"
    assert scan(text) == [Finding("hetu", 6, 17)]
    assert scan(f"soita {wrong_check(code)} huomenna") == []


# -- IBANs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("iban", ["FI21 1234 5600 0007 85", "FI2112345600000785",
                                  "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432",
                                  "fi21 1234 5600 0007 85"])
def test_valid_iban_is_found(iban):
    text = f"Tilinumero {iban}. Kiitos."
    assert spans(text) == [iban]
    assert kinds(text) == ["iban"]


def test_iban_followed_by_words_ends_at_the_last_valid_group():
    text = "tili FI21 1234 5600 0007 85 ja FI21 1234 5600 0007 85 ABC"
    assert spans(text) == ["FI21 1234 5600 0007 85"] * 2


@pytest.mark.parametrize("text", ["FI21 1234 5600 0007 86", "FI2112345600000784",
                                  "FI21 1234 5600 0007", "XX21 1234 5600 0007 85"])
def test_invalid_iban_is_not_a_finding(text):
    assert scan(f"tili {text} kiitos") == []


# -- phone numbers ---------------------------------------------------------------------------

@pytest.mark.parametrize("phone", ["040 123 4567", "0401234567", "050-1234567",
                                   "+358 40 123 4567", "+358401234567", "09 310 1691",
                                   "+358 9 310 1691", "(09) 816 21", "044 123 45 67",
                                   "+46 8 123 456 78"])
def test_valid_phone_numbers_are_found(phone):
    text = f"Soita numeroon {phone} arkisin."
    assert spans(text) == [phone]
    assert kinds(text) == ["phone"]


@pytest.mark.parametrize("text", [
    "Päätös 12.3.2024 on voimassa 31.12.2024 asti.", "Hakemus saapui 2024-03-12.",
    "Summa 1 234,56 € ja 12 345 678,90 euroa.", "Vuokra 850 €/kk, 2 500 euroa.",
    "Aukioloaika klo 10.00-16.00.", "Osoite Kielotie 13, 01300 Vantaa.",
    "Dnro 1234/02.05.01/2024", "asiakasnumero 123456789", "viite 12345 67890 12",
    "vuonna 2024 noin 45 % hakijoista", "Perusosa 555,11 e/kk.", "päätös 123456/2024",
])
def test_ordinary_numbers_are_not_findings(text):
    assert scan(text) == []


# -- e-mail ----------------------------------------------------------------------------------

@pytest.mark.parametrize("email", ["etunimi.sukunimi@vantaa.fi", "user+tag@mail.example.org",
                                   "x_y-z@sub-domain.example.com", "neuvonta@kela.fi",
                                   "maija@sähkö.fi", "a@xn--shk-qla.fi"])
def test_email_addresses_are_found(email):
    text = f"Lähetä osoitteeseen {email}."
    assert spans(text) == [email]


@pytest.mark.parametrize("text", ["foo@bar", "@vantaa.fi", "a..b@x.fi", "foo@-bar.fi",
                                  "foo@bar.1fi", "nimi @ vantaa.fi", "foo@bar_baz.fi"])
def test_malformed_addresses_are_not_findings(text):
    assert kinds(f"osoite {text} tässä") == []


def test_overlong_local_part_is_not_an_address():
    assert scan("x" * 65 + "@vantaa.fi") == []


# -- mixed text, overlaps and redaction ------------------------------------------------------

def test_mixed_text_finds_each_identifier_once_in_order():
    code = synthetic_hetu(1, 2, 1985, 345, "Y")
    text = (f"Asiakas {code}, tili FI21 1234 5600 0007 85, puh. 040 123 4567, "
            f"posti asiakas@example.fi")
    assert kinds(text) == ["hetu", "iban", "phone", "email"]
    found = scan(text)
    assert all(a.end <= b.start for a, b in zip(found, found[1:]))


def test_finding_repr_carries_no_value():
    code = synthetic_hetu(1, 2, 1985, 345)
    (finding,) = scan(f"tunnus {code}")
    assert code not in repr(finding) and code[:6] not in repr(finding)


def test_redact_with_mapping_and_callable():
    code = synthetic_hetu(1, 2, 1985, 345)
    text = f"tunnus {code}, puh 040 123 4567."
    findings = scan(text)
    assert redact(text, findings, {"hetu": "[asiakas]"}) == "tunnus [asiakas], puh [phone]."
    assert redact(text, findings, lambda kind: kind.upper()) == "tunnus HETU, puh PHONE."
    assert redact(text, [], {"hetu": "x"}) == text


def test_redact_skips_overlapping_findings():
    text = "0123456789"
    findings = [Finding("hetu", 0, 6), Finding("phone", 3, 9)]
    assert redact(text, findings, lambda k: "#") == "#6789"


def test_empty_text():
    assert scan("") == []


def test_no_valid_phone_number_has_fewer_digits_than_the_scanner_requires():
    """The scanner skips libphonenumber on texts with fewer than PHONE_MIN_DIGITS digits: the
    bound must hold for every region's shortest numbers, written as the matcher would find them."""
    import phonenumbers
    from phonenumbers import PhoneNumberFormat, PhoneNumberType

    from consult.policy.scan import PHONE_MIN_DIGITS

    shortest = None
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in vars(PhoneNumberType).values():
            if not isinstance(kind, int):
                continue
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
            desc = phonenumbers.phonenumberutil._number_desc_by_type(metadata, kind)
            lengths = [n for n in (desc.possible_length or ()) if n > 0] if desc else []
            # International form: "+" and the country code before the shortest national number.
            cc_digits = len(str(example.country_code))
            for length in lengths or [len(str(example.national_number))]:
                digits = cc_digits + length
                shortest = digits if shortest is None else min(shortest, digits)
    # Finnish numbers are found without a country code too: the shortest national number.
    fi = phonenumbers.PhoneMetadata.metadata_for_region("FI").general_desc.possible_length
    shortest = min(shortest, min(n for n in fi if n > 0))
    assert shortest >= PHONE_MIN_DIGITS


def test_short_numbers_near_the_bound_are_still_found():
    # Seven and eight digits: found although the text holds few digits besides them.
    assert [f.kind for f in scan("soita 040 1234")] == ["phone"]
    assert [f.kind for f in scan("p. 09 123 45")] == ["phone"]
    assert scan("huone 1234, kerros 3") == []

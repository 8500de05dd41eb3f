"""The browser app's own endpoints and static files: start-up configuration, the read-only
policy view, the Content-Security-Policy for the OpenID Connect code flow, and the translations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from consult.config import load_settings
from consult.errors import ConfigError
from consult.http.app import create_app
from tests.conftest import Api

WEB = Path(__file__).resolve().parents[2] / "web"
LANGUAGES = ("fi", "sv", "en")


async def test_config_is_public_and_has_no_secrets(api):
    """Property: the start-up configuration is readable before sign-in and names no secret."""
    body = await api.call("GET", "/api/v1/config", expect=200)
    assert body["dev"] is True
    assert body["oidc"] is None
    assert "vantaa" in body["orgs"] and "application_intake" in body["topics"]
    assert "decision.content" in body["categories"] and body["languages"] == ["fi", "sv", "en"]
    text = json.dumps(body)
    for secret in ("key", "jwks", "database", "password"):
        assert secret not in text.lower()


async def test_config_names_every_organisation_in_each_language(api):
    """The app shows an organisation's name, never its id: the configuration carries the names
    the consent receipts use, for every organisation, in Finnish, Swedish and English."""
    body = await api.call("GET", "/api/v1/config", expect=200)
    assert set(body["org_names"]) == set(body["orgs"])
    assert body["org_names"]["kela"]["sv"] == "Folkpensionsanstalten (FPA)"
    assert body["org_names"]["vantaa"]["fi"] == "Vantaan ja Keravan hyvinvointialue"
    assert all(set(names) == {"fi", "sv", "en"} for names in body["org_names"].values())


async def test_config_names_the_identity_provider_and_widens_csp_to_it_only(aiohttp_client, settings):
    """Property: with OpenID Connect configured the browser learns authority and client id, and
    the CSP lets scripts connect to that origin and no other."""
    configured = settings.with_overrides(oidc_authority="https://idp.example.test/realms/konsulta",
                                         oidc_client_id="konsulta-web")
    client = await aiohttp_client(create_app(configured))
    response = await client.get("/api/v1/config")
    body = await response.json()
    assert body["oidc"] == {"authority": "https://idp.example.test/realms/konsulta", "client_id": "konsulta-web",
                           "scope": "openid profile"}
    csp = response.headers["Content-Security-Policy"]
    assert "connect-src 'self' https://idp.example.test;" in csp
    assert "script-src 'self';" in csp
    index = await client.get("/")
    assert index.headers["Content-Security-Policy"] == csp


async def test_default_csp_connects_to_self_only(api):
    response = await api.client.get("/")
    assert "connect-src 'self';" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("env, message", [
    ({"CONSULT_OIDC_AUTHORITY": "https://idp.example.test"}, "set together"),
    ({"CONSULT_OIDC_CLIENT_ID": "konsulta-web"}, "set together"),
    ({"CONSULT_OIDC_AUTHORITY": "http://idp.example.test", "CONSULT_OIDC_CLIENT_ID": "x"}, "https://"),
    ({"CONSULT_OIDC_AUTHORITY": "https://idp.example.test/?a=1", "CONSULT_OIDC_CLIENT_ID": "x"}, "https://"),
])
def test_bad_oidc_settings_stop_start_up(env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings({"CONSULT_DEV": "1", **env})


def test_oidc_on_localhost_may_use_http():
    settings = load_settings({"CONSULT_DEV": "1", "CONSULT_OIDC_AUTHORITY": "http://127.0.0.1:9000/idp",
                              "CONSULT_OIDC_CLIENT_ID": "konsulta-web"})
    assert settings.oidc_client_id == "konsulta-web"


async def test_policy_view_lists_rules_with_citations(api: Api):
    """Property: the policy view shows every rule in force with its citation, read-only."""
    await api.call("GET", "/api/v1/policy", expect=401)
    body = await api.call("GET", "/api/v1/policy", "kela.admin", expect=200)
    rules = {r["id"]: r for r in body["items"]}
    rule = rules["kela-never-decision-content"]
    assert rule["effect"] == "deny"
    assert rule["categories"] == ["decision.content", "decision.preventive", "decision.supplementary"]
    assert "621/1999" in rule["citation"] and rule["source"] == "baseline.toml" and rule["line"] > 0
    assert rule["gdpr"] is None and rule["secrecy"] is None
    assert all(r["citation"].strip() for r in body["items"])
    assert len(body["version"]) == 64 and body["profile"] == "today"
    forward = rules["k2m-forward-basic-decision"]
    assert forward["gdpr"]["articles"] == ["6(1)(e)"] and forward["secrecy"]["exception"] == "statute"
    assert rules["m2k-health-consent"]["secrecy"]["exception"] == "consent"
    categories = {c["name"]: c for c in body["categories"]}
    assert set(categories) >= {"decision.content", "health"}
    assert categories["decision.basic"]["decision"] == {"issuer": "benefit_institution", "kind": "basic",
                                                        "part": "content"}
    assert categories["health"]["special"] is True
    await api.call("POST", "/api/v1/policy", "kela.admin", json={}, expect=405)


async def test_app_files_are_served_with_the_right_types(api):
    index = await api.client.get("/")
    assert index.status == 200 and "text/html" in index.headers["Content-Type"]
    script = await api.client.get("/static/js/main.js")
    assert script.status == 200 and "javascript" in script.headers["Content-Type"]
    strings = await api.client.get("/static/i18n/fi.json")
    assert strings.status == 200 and "json" in strings.headers["Content-Type"]


def _strings(lang: str) -> dict[str, str]:
    return json.loads((WEB / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def test_every_string_exists_in_all_three_languages():
    """Property: Finnish, Swedish and English have exactly the same keys, none empty, and the
    same {placeholders} in each translation."""
    tables = {lang: _strings(lang) for lang in LANGUAGES}
    keys = set(tables["fi"])
    for lang, table in tables.items():
        assert set(table) == keys, (lang, sorted(set(table) ^ keys))
        for key, text in table.items():
            assert isinstance(text, str) and text.strip(), (lang, key)
            assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", tables["fi"][key])), (lang, key)


def test_finnish_terms_follow_the_law():
    """The Finnish UI says hyvinvointialue where the county is meant, lokitieto-ote for the
    client's log extract (703/2023 11 §), and never calls break-glass hätäkäyttö (which is
    Kanta's emergency access)."""
    fi = _strings("fi")
    text = " ".join(fi.values()).lower()
    assert "tarkastusraportti" not in text and "hätäkäyt" not in text
    assert not re.search(r"\bkunta\b|\bkunnan\b|\bkuntien\b", text)
    assert fi["ask.target"] == "Hyvinvointialue" and fi["orgkind.wellbeing_county"] == "hyvinvointialue"
    # The client's log extract is the lokitieto-ote; the officer's own report is not called so.
    assert fi["extract.title"] == "Lokitieto-ote" and fi["action.audit.log_extract"] == "lokitieto-ote"
    assert "lokitieto-ote" not in fi["privacy.report"].lower() + fi["report.title"].lower()
    assert "703/2023 11 §" in fi["privacy.report.help"]
    assert "hätä" not in fi["action.break_glass"] + fi["flag.break_glass"]


def test_every_key_the_code_uses_is_translated():
    """Every literal t("…") in the app's code names a key of the string tables, and every
    vocabulary the API defines (categories, purposes, urgencies, topics, outcomes, roles) has a label."""
    keys = set(_strings("fi"))
    used = set()
    for path in (WEB / "js").rglob("*.js"):
        used |= set(re.findall(r"""\bt\(\s*["']([\w.-]+)["']""", path.read_text(encoding="utf-8")))
    assert used, "no t() calls found"
    assert used <= keys, sorted(used - keys)
    from consult.model.vocabulary import CATEGORIES, DEFAULT_TOPICS, OUTCOMES, PURPOSES, ROLES, STATUSES, URGENCIES
    vocabularies = {"category": CATEGORIES, "purpose": PURPOSES, "urgency": URGENCIES, "topic": DEFAULT_TOPICS,
                    "outcome": OUTCOMES, "role": ROLES, "status": STATUSES}
    for prefix, names in vocabularies.items():
        missing = sorted(n for n in names if f"{prefix}.{n}" not in keys)
        assert not missing, (prefix, missing)


def test_app_code_never_renders_markup_from_strings():
    """Property: the app builds the DOM from nodes and textContent only — no innerHTML, no
    eval, no inline style or script in markup (the CSP would block them anyway)."""
    for path in list((WEB / "js").rglob("*.js")) + [WEB / "index.html"]:
        source = path.read_text(encoding="utf-8")
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                       "style=", "<script>", "localStorage.setItem(\"konsulta.token"):
            assert banned not in source, (path.name, banned)

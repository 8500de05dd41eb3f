"""Categories and purposes have one home, ``policies/taxonomy.toml``: the model's constants, the
OpenAPI enums, ``/api/v1/config`` and request validation all follow the taxonomy the service
loaded, so changing the taxonomy changes them and no second list can drift from it."""

from __future__ import annotations

import dataclasses
import shutil
import tomllib
from pathlib import Path
from typing import Any

from consult.auth.dev import DEMO_USERS
from consult.http import keys
from consult.http.app import create_app
from consult.model import vocabulary
from consult.services import log_extract, receipts

from tests.api.test_request_schemas import inline

TRANSLATIONS = {"consult/services/log_extract.py", "consult/services/receipts.py"}

ROOT = Path(__file__).resolve().parents[2]

EXTRA = '''
[categories."income.pension"]
description = "A pension paid by someone other than Kela (synthetic, for a test)."
sensitivity = "medium"

[purposes."tt.pension_check"]
description = "Checking a pension (synthetic, for a test)."
categories = ["income.pension", "identity.hetu"]
'''


def _enums(node: Any, out: list[list[str]]) -> list[list[str]]:
    if isinstance(node, dict):
        if isinstance(node.get("enum"), list):
            out.append(node["enum"])
        for value in node.values():
            _enums(value, out)
    elif isinstance(node, list):
        for value in node:
            _enums(value, out)
    return out


def test_model_constants_are_the_shipped_taxonomy() -> None:
    with (ROOT / "policies" / "taxonomy.toml").open("rb") as fh:
        data = tomllib.load(fh)
    assert vocabulary.CATEGORIES == frozenset(data["categories"])
    assert vocabulary.PURPOSES == frozenset(data["purposes"])
    assert vocabulary.ROLES == frozenset(data["roles"])


def test_no_module_lists_the_categories_again() -> None:
    """A hand-kept category list in code (one that names most categories) is a second home."""
    names = sorted(vocabulary.CATEGORIES)
    for path in (ROOT / "consult").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        named = [n for n in names if f'"{n}"' in text]
        if path.relative_to(ROOT).as_posix() in TRANSLATIONS:
            continue  # translations of the names, checked against the taxonomy below
        assert len(named) < len(names) // 2, f"{path.relative_to(ROOT)} lists categories: {named}"


def test_the_translations_follow_the_taxonomy() -> None:
    """The client's log extract and receipts name each category in plain language: exactly the
    taxonomy's categories, no more and no fewer."""
    for lang, labels in log_extract.CATEGORIES.items():
        assert set(labels) == set(vocabulary.CATEGORIES), lang
    for lang, texts in receipts.PLAIN.items():
        assert set(texts["category"]) == set(vocabulary.CATEGORIES), lang
        assert set(texts["purpose"]) <= set(vocabulary.PURPOSES), lang
        assert set(texts["role"]) <= set(vocabulary.ROLES), lang


async def test_changing_the_taxonomy_changes_schema_config_and_validation(aiohttp_client, settings, tmp_path):
    """A category and purpose added to the loaded taxonomy appear in the OpenAPI enums and the
    browser configuration, and a request naming them passes validation; the shipped enums do not
    have them."""
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    with (policies / "taxonomy.toml").open("a", encoding="utf-8") as fh:
        fh.write(EXTRA)
    client = await aiohttp_client(create_app(dataclasses.replace(settings, policy_dir=policies)))

    document = await (await client.get("/api/v1/openapi.json")).json()
    enums = _enums(document, [])
    assert any("income.pension" in e for e in enums)
    assert any("tt.pension_check" in e for e in enums)
    consent = document["paths"]["/api/v1/clients/{ref}/consents"]["post"]["requestBody"]["content"]
    scope = inline(consent["application/json"]["schema"], document)
    assert "income.pension" in str(scope) and "tt.pension_check" in str(scope)

    config = await (await client.get("/api/v1/config")).json()
    assert "income.pension" in config["categories"]
    assert "tt.pension_check" in config["purposes"]

    user = next(u for u in DEMO_USERS if u.user_id == "kela.aino")
    token = client.app[keys.DEV_ISSUER].mint_for(user)
    scan = await client.post("/api/v1/scan", json={"text": "x", "purpose": "tt.pension_check"},
                             headers={"Authorization": f"Bearer {token}"})
    assert scan.status == 200, await scan.text()


async def test_the_shipped_taxonomy_is_served(api) -> None:
    document = await api.call("GET", "/api/v1/openapi.json")
    enums = _enums(document, [])
    assert sorted(vocabulary.CATEGORIES) in enums
    assert not any("income.pension" in e for e in enums)

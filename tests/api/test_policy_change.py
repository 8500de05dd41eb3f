"""A changed policy changes what a reader sees of messages already stored (read-time enforcement)."""

from __future__ import annotations

import shutil
from dataclasses import replace

from consult.http import keys
from consult.http.app import create_app
from tests.conftest import ROOT, Api
from tests.synthetic import hetu


async def test_restricting_the_policy_withholds_stored_values(aiohttp_client, settings, tmp_path):
    first = Api(await aiohttp_client(create_app(settings)))
    ref = await first.register(hetu(30))
    created = await first.open_consultation(purpose="tt.application_intake", client_ref=ref)
    cid = created["id"]
    await first.call("POST", f"/api/v1/consultations/{cid}/claim", "vantaa.sanna", expect=200)
    await first.call("POST", f"/api/v1/consultations/{cid}/messages", "vantaa.sanna", expect=201,
                     json={"data": [{"category": "application.status", "value": "STATUS-1"}]})
    page = await first.call("GET", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=200)
    assert page["items"][0]["data"][0]["value"] == "STATUS-1"
    old_version = first.client.app[keys.MESSAGES].disclosure.version
    await first.client.close()

    # A stricter policy: the municipality turns the status rule into a deny.
    policy_dir = tmp_path / "stricter"
    shutil.copytree(ROOT / "policies", policy_dir)
    baseline = policy_dir / "baseline.toml"
    text = baseline.read_text()
    marker = 'id = "m2k-application-status"\neffect = "permit"'
    assert marker in text
    baseline.write_text(text.replace(marker, 'id = "m2k-application-status"\neffect = "deny"'))

    second = Api(await aiohttp_client(create_app(replace(settings, policy_dir=policy_dir))))
    assert second.client.app[keys.MESSAGES].disclosure.version != old_version
    page = await second.call("GET", f"/api/v1/consultations/{cid}/messages", "kela.aino", expect=200)
    item = page["items"][0]["data"][0]
    assert item["withheld"] is True and item["rule"] == "m2k-application-status"
    assert "STATUS-1" not in str(page)


async def test_broken_policy_stops_start_up_naming_file_and_line(aiohttp_client, settings, tmp_path):
    import pytest

    from consult.errors import ConfigError

    policy_dir = tmp_path / "broken"
    shutil.copytree(ROOT / "policies", policy_dir)
    (policy_dir / "baseline.toml").write_text((ROOT / "policies" / "baseline.toml").read_text().replace(
        'categories = ["application.status"]', 'categories = ["application.statuz"]', 1))
    with pytest.raises(ConfigError, match=r"baseline\.toml:\d+"):
        await aiohttp_client(create_app(replace(settings, policy_dir=policy_dir)))

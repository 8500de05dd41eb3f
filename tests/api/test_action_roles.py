"""One action → roles table (consult/model/actions.py): the edge checks each route's roles from
it before the handler runs, the services check the same table, the OpenAPI document publishes it
(``x-roles``) and the web app decides what to show from that document, not from a list of its own."""

from __future__ import annotations

import pathlib
import re

from consult.auth.dev import DEMO_USERS
from consult.config import Settings
from consult.http.app import routes_for
from consult.model import actions
from consult.model.vocabulary import ROLES

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLE_LITERAL = re.compile(r"""["'](%s)["']""" % "|".join(sorted(ROLES)))


def _routes(settings: Settings):
    return [r for r in routes_for(settings) if r.action is not None]


def test_every_action_names_known_roles() -> None:
    for action, roles in actions.ROLES.items():
        assert roles and roles <= ROLES, action


async def test_the_document_publishes_each_routes_roles_from_the_table(api, settings) -> None:
    document = await api.call("GET", "/api/v1/openapi.json")
    routes = _routes(settings)
    assert len(routes) >= 30
    for route in routes:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["x-action"] == route.action
        assert operation["x-roles"] == sorted(actions.ROLES[route.action])
    guarded = {(r.method.lower(), r.path) for r in routes}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert ("x-roles" in operation) == ((method, path) in guarded), (method, path)


async def test_the_edge_refuses_every_role_the_table_does_not_name(api, settings) -> None:
    """For each guarded route, a demo user with none of its roles gets 403 ``role`` before the
    handler reads anything (path ids and bodies are placeholders: the check comes first)."""
    for route in _routes(settings):
        if not route.edge_checks_role:
            continue
        outsider = next(u for u in DEMO_USERS if not set(u.roles) & actions.ROLES[route.action])
        path = re.sub(r"{(\w+)}", lambda m: "cl_00000000000000000000" if m.group(1) == "ref" else "x", route.path)
        body = await api.call(route.method, path, outsider.user_id, json={} if route.method != "GET" else None,
                              expect=403)
        assert body["error"]["code"] == "role", (route.path, body)


def test_a_route_that_hides_existence_first_leaves_the_check_to_the_service(settings) -> None:
    """Where a 404 must come before a 403, the service checks the same action from the table."""
    services = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "consult" / "services").rglob("*.py"))
    for route in _routes(settings):
        if not route.edge_checks_role:
            assert f'actions.allows(who, "{route.action}")' in services, route.path


def test_no_role_list_outside_the_table() -> None:
    """No edge or service module spells a role check of its own: no ``*_ROLES`` constant, no
    ``require_role`` and no ``has("<role>")``."""
    offenders = []
    for folder in ("http", "services"):
        for path in (ROOT / "consult" / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if re.search(r"^[A-Z_]*_ROLES\s*[:=]", text, re.M) or "require_role(" in text:
                offenders.append(str(path.relative_to(ROOT)))
            if re.search(r"""\.has\(["']""", text):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_web_app_has_no_role_logic_of_its_own() -> None:
    """The browser decides with ``may(method, path)``, which reads the roles of each operation from
    the OpenAPI document: no view tests a role by name (a role name in JavaScript appears only as
    data, ``role: "..."``)."""
    offenders = []
    for path in (ROOT / "web" / "js").rglob("*.js"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "session.has(" in line and path.name != "api.js":
                offenders.append(f"{path.name}:{number}")
            for match in ROLE_LITERAL.finditer(line):
                if not re.search(r"role:\s*$", line[: match.start()]):
                    offenders.append(f"{path.name}:{number}: {match.group(0)}")
    assert offenders == []

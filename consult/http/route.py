"""A route of the public API as one declaration: its path, who may call it, the shape of its query
parameters, of its body and of its answer. The router, the role check, the query and body readers
and the OpenAPI document (consult/http/openapi.py) are all built from it, so none of them is
written twice."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from consult.http import keys
from consult.http import shapes as sh
from consult.http import validation as v
from consult.http import vocabulary as vocab
from consult.http.principal import authenticate
from consult.model import actions

Handler = Callable[..., Awaitable[web.StreamResponse]]
Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: A declared type: a ``shapes.Body`` or ``shapes.Answer`` (or a list of one), ``str`` or ``bytes``.
Schema = Any

log = logging.getLogger("consult.http")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    #: Called as ``handler(request)``, or ``handler(request, body)`` when ``body`` is a ``Struct``
    #: type: the body read into it; with ``query=`` the parameters read into ``query``, when it
    #: is declared. The caller, when ``auth``, is ``principal.caller(request)``.
    handler: Handler
    summary: str
    who: str = "any user"
    auth: bool = True
    #: The request body: a ``shapes.Body`` type. A JSON body is read and checked by the edge; a
    #: body of another ``body_type`` (multipart) is read by the handler, and the type documents it.
    body: Schema | None = None
    #: The success answer: a ``shapes.Answer`` type (or a list of one) for JSON, ``str`` or
    #: ``bytes`` for other content types.
    response: Schema | None = None
    status: int = 200
    #: The query parameters: a ``shapes.Query`` type, read by the edge and given to the handler as
    #: its ``query`` keyword argument.
    query: type[sh.Query] | None = None
    errors: tuple[int, ...] = field(default=(400, 401, 403, 404, 413, 422))
    content_type: str = "application/json"
    #: Further content types of the success answer (e.g. a format chosen by a query parameter).
    other_content_types: tuple[str, ...] = ()
    body_type: str = "application/json"
    other_responses: tuple[tuple[int, str, Schema], ...] = ()  # (status, description, type), not errors
    #: The success answer carries secret client data: it gets the secrecy marking header
    #: (consult/model/secrecy.py; julkisuuslaki 621/1999 § 25).
    secret: bool = False
    #: The action whose roles may call the route (consult/model/actions.py); checked before the
    #: handler runs and published as ``x-roles``. None: any signed-in user, the rest is decided
    #: by the service and the policy.
    action: str | None = None
    #: False where the route must first hide whether its subject exists (404 before 403): the
    #: service then checks the same table after resolving what the caller may see.
    edge_checks_role: bool = True

    def __post_init__(self) -> None:
        if self.action is not None:
            actions.roles_for(self.action)  # an unknown action fails when the routes are built

    @property
    def json_body(self) -> type[sh.Body] | None:
        """The declared type the edge reads a JSON body into before the handler runs, or None."""
        body = self.body
        if self.body_type == "application/json" and isinstance(body, type) and issubclass(body, sh.Body):
            return body
        return None

    @property
    def reads_body(self) -> bool:
        """True when the edge reads the body into the declared type before the handler runs."""
        return self.json_body is not None

    @property
    def endpoint(self) -> Endpoint:
        """The handler as the router runs it: the caller authenticated (``auth``), the role of
        ``action`` checked, the body read into its type; in development mode the answer is
        checked against the declared type (``keys.CHECK_ANSWERS``)."""
        route = self

        @functools.wraps(self.handler)
        async def endpoint(request: web.Request) -> web.StreamResponse:
            if route.auth:
                who = await authenticate(request)
                if route.action is not None and route.edge_checks_role:
                    actions.require(who, route.action)
            args: list[Any] = [request]
            kwargs: dict[str, Any] = {}
            if route.query is not None:
                kwargs["query"] = sh.read_query(request.query, route.query, names(request))
            shape = route.json_body
            if shape is not None:
                args.append(await read_body(request, shape))
            response = await route.handler(*args, **kwargs)
            if request.app.get(keys.CHECK_ANSWERS):
                route.check(response)
            return response

        return endpoint

    def check(self, response: web.StreamResponse) -> None:
        """Raise ``shapes.UndeclaredAnswer`` when a JSON success answer is not of the declared type."""
        if not isinstance(response, web.Response) or response.content_type != "application/json":
            return
        declared = self.response if response.status == self.status else next(
            (shape for status, _text, shape in self.other_responses if status == response.status), None)
        if declared is None or declared in (str, bytes):
            return
        body = response.body
        if not isinstance(body, bytes):
            return
        try:
            sh.check_answer(body, declared)
        except sh.UndeclaredAnswer:
            log.error("undeclared answer route=%s %s status=%s", self.method, self.path, response.status)
            raise


async def read_body(request: web.Request, shape: type[sh.T]) -> sh.T:
    """The JSON body as ``shape`` (``validation.json_body`` reads it, ``shapes.convert`` checks
    it), with the names of the running policy and configuration."""
    data = await v.json_body(request)
    return sh.convert(data, shape, names(request))


def names(request: web.Request) -> sh.Names:
    """The names a body is checked against, for the policy the application loaded."""
    engine = request.app[keys.POLICY]
    cache = request.app[keys.BODY_NAMES]  # id of the policy engine -> its names
    if id(engine) not in cache:
        settings = request.app[keys.SETTINGS]
        cache.clear()
        cache[id(engine)] = sh.names_for(vocab.of_policy(engine.policy), settings.topics, settings.orgs)
    names: sh.Names = cache[id(engine)]
    return names

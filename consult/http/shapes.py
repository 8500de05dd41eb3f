"""How the public API declares its shapes once: a request body, a route's query parameters or a
success answer is a msgspec ``Struct``; the edge reads a body or a query string into it and the
OpenAPI document is generated from it.

A body is parsed by the edge's one JSON loader (``validation.loads``: nesting limit, no lone
surrogate, no NaN/Infinity) and then converted into its ``Struct``: unknown fields, types,
lengths, patterns and enums are checked by that one declaration, and a refusal is a 422 naming
the field. A query string is read into its ``Query`` the same way (``read_query``): each field is
one parameter, its text parsed by the field's type (ASCII digits for an integer, the one time
parser for a time, a date or a month), then checked by the same declaration; a refusal is a 400
``bad_query`` naming the parameter. The taxonomy's names (categories, purposes, roles) are types
of their own, checked against the running policy's vocabulary and published with its names
(``TAXONOMY``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, ClassVar, Final, TypeVar

import msgspec
import msgspec.inspect as mi
from msgspec import Meta
from multidict import MultiMapping

from consult.errors import BadRequest, Unprocessable
from consult.model import identifiers, instant
from consult.model.vocabulary import DEFAULT, Vocabulary

T = TypeVar("T")


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body: closed to fields it does not name."""


class Query(msgspec.Struct, kw_only=True):
    """A route's query parameters: each field is one parameter (required when it has no default),
    read from the query string by ``read_query`` and described in the document by
    ``query_parameters``. A tuple field takes the parameter repeated. A parameter the route does
    not name is ignored, except one in ``refused``: its name -> why it is refused (a 422)."""

    refused: ClassVar[Mapping[str, str]] = {}


class Answer(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A success answer (or a part of one): closed too, so a field a service adds without
    declaring it fails the response check (``check_answer``)."""


# -- the taxonomy's names: checked against the running policy, published with its names ------------


class CategoryName(str):
    """A data category of the running policy's taxonomy."""


class ItemCategory(CategoryName):
    """The category of a data item: one the policy does not know is refused as ``unknown_category``."""


class ClientCategoryName(str):
    """A category that may concern a client (consents, prohibitions)."""


class PurposeName(str):
    """A purpose of the running policy's taxonomy."""


class ClientPurposeName(str):
    """A purpose that carries a client (not ``general``)."""


class RoleName(str):
    """A role of the running policy's taxonomy."""


class TopicName(str):
    """A consultation topic of the service's configuration (``CONSULT_TOPICS``)."""


class KnownOrg(str):
    """An organisation of the service's configuration (``CONSULT_ORGS``)."""


class FilePart(bytes):
    """A file sent as a part of a ``multipart/form-data`` body: its bytes as they are."""


#: Each taxonomy type -> the name of its enum in the document and its names in a vocabulary.
TAXONOMY: Final[dict[type, tuple[str, Callable[[Vocabulary], frozenset[str]]]]] = {
    CategoryName: ("categories", lambda v: v.categories),
    ItemCategory: ("categories", lambda v: v.categories),
    ClientCategoryName: ("client_categories", lambda v: v.client_categories),
    PurposeName: ("purposes", lambda v: v.purposes),
    ClientPurposeName: ("client_purposes", lambda v: v.client_purposes),
    RoleName: ("roles", lambda v: v.roles),
}
#: The refusal code of a name the taxonomy does not know, where it is not ``invalid_field``.
_TAXONOMY_CODES: dict[type, str] = {ItemCategory: "unknown_category"}
TAXONOMY_KEY: Final = "x-taxonomy"
#: The names a body is checked against: each taxonomy or configuration type -> its names.
Names = Mapping[type, frozenset[str]]


def names_for(vocabulary: Vocabulary, topics: Iterable[str], orgs: Iterable[str]) -> dict[type, frozenset[str]]:
    """The names of ``vocabulary`` and of the configured topics and organisations, by type."""
    names = {kind: of(vocabulary) for kind, (_name, of) in TAXONOMY.items()}
    names[TopicName] = frozenset(topics)
    names[KnownOrg] = frozenset(orgs)
    return names


def taxonomy_enum(kind: str, vocabulary: Vocabulary) -> list[str]:
    """The names of one taxonomy enum (``TAXONOMY``'s first element) in ``vocabulary``."""
    names = next(names for name, names in TAXONOMY.values() if name == kind)
    return sorted(names(vocabulary))


def enums(names: Names) -> dict[str, list[str]]:
    """The enum of each ``TAXONOMY_KEY`` mark in the document, from ``names`` (``names_for``)."""
    found = {TAXONOMY[kind][0]: sorted(values) for kind, values in names.items() if kind in TAXONOMY}
    found["topics"] = list(names[TopicName])
    found["orgs"] = sorted(names[KnownOrg])
    return found


def _schema_hook(kind: type) -> dict[str, Any]:
    if kind in TAXONOMY:
        name = TAXONOMY[kind][0]
        # The shipped taxonomy's names; the served document has the running policy's (openapi.py).
        return {"type": "string", "enum": taxonomy_enum(name, DEFAULT), TAXONOMY_KEY: name}
    if kind is TopicName:
        # The served document lists the running service's topics (openapi.py).
        return {"type": "string", "maxLength": identifiers.NAME_MAX, "pattern": whole(identifiers.NAME_SHAPE),
                "description": "One of the service's topics (CONSULT_TOPICS)", TAXONOMY_KEY: "topics"}
    if kind is KnownOrg:
        return {"type": "string", "maxLength": identifiers.ORG_MAX, "pattern": whole(identifiers.ORG_SHAPE),
                "description": "One of the service's organisations (CONSULT_ORGS)", TAXONOMY_KEY: "orgs"}
    if kind is FilePart:
        return {"type": "string", "format": "binary"}
    raise NotImplementedError(kind)


class _Refused(ValueError):
    """A taxonomy name the vocabulary does not know; carries the refusal code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


_WHAT: dict[type, str] = {TopicName: "topics", KnownOrg: "organisations"}


def _decoder(names: Names) -> Callable[[type, Any], Any]:
    def hook(kind: type, value: Any) -> Any:
        if kind is FilePart and isinstance(value, FilePart):
            return value  # read from its part by the handler, never from JSON
        if kind not in names:
            raise NotImplementedError(kind)
        if not isinstance(value, str):
            raise TypeError(f"Expected `str`, got `{type(value).__name__}`")
        if value not in names[kind]:
            what = _WHAT.get(kind) or TAXONOMY[kind][0].replace("_", " ") + " of the policy"
            raise ValueError(f"is not one of the {what} ({_mark(kind)})")
        return kind(value)

    return hook


def _mark(kind: type) -> str:
    return _TAXONOMY_CODES.get(kind, "invalid_field")


# -- shared field shapes -----------------------------------------------------------------------------

# msgspec matches a pattern with ``re.search``; ``$(?!\n)`` ends it where JSON Schema's ``$`` does
# (Python's ``$`` alone would also match before a final newline).
_END = r"$(?!\n)"
_CTRL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
_CTRL_LINE = r"\x00-\x1f\x7f"
#: Free text: any characters but control characters (tab and line breaks allowed).
ANY_TEXT = rf"^[^{_CTRL}]*{_END}"
#: Free text with at least one character that is not white space.
SOME_TEXT = rf"^[^{_CTRL}]*[^\s{_CTRL}][^{_CTRL}]*{_END}"
#: One line with at least one character that is not white space.
SOME_LINE = rf"^[^{_CTRL_LINE}]*[^\s{_CTRL_LINE}][^{_CTRL_LINE}]*{_END}"


def whole(shape: str) -> str:
    return rf"^(?:{shape}){_END}"


def text(max_length: int, *, min_length: int = 1, description: str | None = None) -> Meta:
    """Free text of at most ``max_length`` characters, not blank: ``Annotated[str, text(n)]``."""
    return Meta(min_length=min_length, max_length=max_length, pattern=SOME_TEXT, description=description)


def line(max_length: int, description: str | None = None) -> Meta:
    """One line of at most ``max_length`` characters, not blank."""
    return Meta(min_length=1, max_length=max_length, pattern=SOME_LINE, description=description)


def any_text(max_length: int, description: str | None = None) -> Meta:
    """Free text of at most ``max_length`` characters, possibly empty."""
    return Meta(max_length=max_length, pattern=ANY_TEXT, description=description)


UserId = Annotated[str, Meta(pattern=whole(identifiers.USER_ID_SHAPE), max_length=identifiers.USER_ID_MAX)]
OrgId = Annotated[str, Meta(pattern=whole(identifiers.ORG_SHAPE), max_length=identifiers.ORG_MAX)]
Name = Annotated[str, Meta(pattern=whole(identifiers.NAME_SHAPE), max_length=identifiers.NAME_MAX)]
ClientRef = Annotated[str, Meta(pattern=whole(identifiers.CLIENT_REF_SHAPE), max_length=identifiers.CLIENT_REF_MAX)]


# -- reading a body ----------------------------------------------------------------------------------

_FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_AT = re.compile(r"^(?P<reason>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.S)
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>.*)`$", re.S)
_MISSING = re.compile(r"^Object missing required field `(?P<name>[a-z_0-9]+)`$")
_ENUM = re.compile(r"^Invalid enum value .*$", re.S)
_REGEX = re.compile(r"^Expected `str` matching regex .*$", re.S)
_TAXON = re.compile(r"^(?P<reason>.*) \((?P<code>[a-z_]+)\)$", re.S)


def convert(data: Any, shape: type[T], names: Names) -> T:
    """``data`` (as ``validation.loads`` read it) as ``shape``, or a 422 naming the field: code
    ``unknown_field`` for a field the shape does not name, else ``invalid_field`` (or the code
    a taxonomy type names)."""
    try:
        return msgspec.convert(data, shape, dec_hook=_decoder(names))
    except msgspec.ValidationError as exc:
        raise refusal(str(exc), shape) from None


def refusal(error: str, shape: Any = None) -> Unprocessable:
    """The 422 for a msgspec validation error: it names the field, never echoes a value, and
    repeats an unknown field's name only when it is shaped like a field name (an identity code
    sent as a key is not repeated)."""
    found = _AT.match(error)
    reason, path = (found["reason"], found["path"]) if found else (error, None)
    where = (path or "$").removeprefix("$").removeprefix(".") or "body"
    unknown = _UNKNOWN.match(reason)
    if unknown:
        name = unknown["name"]
        listed = f": {name}" if _FIELD_NAME.match(name) else ""
        return Unprocessable(f"{where} has unknown fields{listed}", code="unknown_field")
    code = "invalid_field"
    missing = _MISSING.match(reason)
    taxon = _TAXON.match(reason)
    if missing:
        where = f"{where}.{missing['name']}" if where != "body" else missing["name"]
        reason = "is required"
    elif _ENUM.match(reason):
        reason = "is not one of the values the document lists"
    elif _REGEX.match(reason):
        reason = "is not of the form the document describes"
    elif taxon:
        reason, code = taxon["reason"], taxon["code"]
    if shape is not None and where != "body":
        # A field may name its own refusal code: Meta(extra={"code": ...}).
        code = _extra(_field_at(shape, where)).get("code", code)
    return Unprocessable(f"{where}: {reason}", code=code)


_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[\d+\]")


def _members(node: Any) -> Iterable[Any]:
    """``node`` and what it wraps: the metadata around a type, the members of a union."""
    if isinstance(node, mi.Metadata):
        yield node
        yield from _members(node.type)
    elif isinstance(node, mi.UnionType):
        for member in node.types:
            yield from _members(member)
    else:
        yield node


def _field_at(shape: Any, where: str) -> Any:
    """The type of the field at ``where`` (``a.b[0].c``) in ``shape``, or None."""
    node: Any = mi.type_info(shape)
    for match in _STEP.finditer(where):
        key = match[1]
        following = None
        for member in _members(node):
            if key is None and isinstance(member, mi.ListType):
                following = member.item_type
            elif key is not None and isinstance(member, mi.StructType):
                following = next((f.type for f in member.fields if f.encode_name == key), None)
            if following is not None:
                break
        if following is None:
            return None
        node = following
    return node


def _extra(node: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for member in _members(node):
        if isinstance(member, mi.Metadata) and member.extra:
            found.update(member.extra)
    return found


# -- reading a query string ---------------------------------------------------------------------------

#: How a time parameter takes a bare date (``Meta(extra={"day": ...})``): see ``instant.DayMeans``.
DAY: Final = "day"
#: ``Meta(extra={"form": "month"})`` on a ``date`` parameter: a month YYYY-MM (its first day).
FORM: Final = "form"
_YEARS = f"years {instant.EARLIEST.year}..{instant.LATEST.year - 1}"


def _parts(node: Any) -> tuple[Any, dict[str, Any], bool]:
    """A field's type without ``None`` and its metadata: (type, extra, repeated)."""
    members = [m for m in (node.types if isinstance(node, mi.UnionType) else (node,))
               if not isinstance(m, mi.NoneType)]
    assert len(members) == 1, f"a query parameter has one type besides None: {node}"
    (kind,) = members
    extra: dict[str, Any] = {}
    while isinstance(kind, mi.Metadata):
        extra.update(kind.extra or {})
        kind = kind.type
    if isinstance(kind, mi.VarTupleType):
        item, item_extra, _ = _parts(kind.item_type)
        return item, {**extra, **item_extra}, True
    return kind, extra, False


@functools.cache
def _query_fields(shape: type[Query]) -> tuple[tuple[mi.Field, Any, dict[str, Any], bool], ...]:
    """Each field of ``shape`` with its parts (``_parts``), inspected once per declaration, not
    at every request."""
    info = mi.type_info(shape)
    assert isinstance(info, mi.StructType), shape
    return tuple((f, *_parts(f.type)) for f in info.fields)


def _parse(raw: str, kind: Any, extra: dict[str, Any]) -> Any:
    """One parameter's text as the value its type holds; ``instant.BadInstant`` or ``ValueError``
    (with a message naming no value) when it is not of that form."""
    if isinstance(kind, mi.IntType):
        # ASCII digits only: int() would read '٣' as 3, and str.isdigit() lets '²' through. At
        # most 19 digits (the largest bound any parameter declares, 2^62, has 19); the bound itself
        # is checked by the declaration.
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
            raise ValueError("must be a non-negative integer in ASCII digits")
        return int(raw)
    if isinstance(kind, mi.DateTimeType):
        return instant.parse_instant(raw, day=extra.get(DAY))
    if isinstance(kind, mi.DateType):
        return instant.parse_month(raw) if extra.get(FORM) == "month" else instant.parse_day(raw)
    return raw


def read_query(query: MultiMapping[str], shape: type[T], names: Names) -> T:
    """The parameters of ``query`` (a multidict: ``getall`` for a repeated one) as ``shape``, a
    ``Query``; an empty parameter counts as absent. 400 ``bad_query`` naming the parameter, never
    echoing its value; 422 for a parameter the shape refuses."""
    assert issubclass(shape, Query), shape
    for name, why in shape.refused.items():
        if name in query:
            raise Unprocessable(f"{name}: {why}", code="invalid_field")
    values: dict[str, Any] = {}
    for f, kind, extra, repeated in _query_fields(shape):
        raws = [r for r in (query.getall(f.encode_name, ()) if repeated else [query.get(f.encode_name)]) if r]
        if not raws:
            continue
        try:
            parsed = [_parse(raw, kind, extra) for raw in raws]
        except ValueError as exc:  # BadInstant is one
            raise BadRequest(f"{f.encode_name}: {exc}.", code="bad_query") from None
        values[f.encode_name] = parsed if repeated else parsed[0]
    try:
        return msgspec.convert(values, shape, dec_hook=_decoder(names))
    except msgspec.ValidationError as exc:
        raise BadRequest(refusal(str(exc), shape).message + ".", code="bad_query") from None


def query_parameters(shape: type[Query]) -> list[dict[str, Any]]:
    """The OpenAPI ``parameters`` of ``shape``: each field's schema generated from its declaration,
    a time, date or month described by the form the reader takes."""
    _refs, components = msgspec.json.schema_components([shape], schema_hook=_schema_hook, ref_template=REF_TEMPLATE)
    properties = components[shape.__name__]["properties"]
    parameters = []
    for f, kind, extra, repeated in _query_fields(shape):
        schema = dict(properties[f.encode_name])
        schema.pop("default", None)
        if "anyOf" in schema:  # X | None: the parameter may be left out, it is never null
            (schema,) = [dict(s) for s in schema["anyOf"] if s.get("type") != "null"]
        item = schema["items"] if repeated else schema
        description = schema.pop("description", None) or item.pop("description", None)
        if isinstance(kind, mi.DateTimeType):
            item.clear()
            item.update({"type": "string", "maxLength": instant.MAX_LENGTH})
            if extra.get(DAY) is None:
                item.update({"format": "date-time", "description": f"ISO 8601 time with zone; {_YEARS}"})
            else:
                item["description"] = f"ISO 8601 time with zone, or a date YYYY-MM-DD (Helsinki); {_YEARS}"
        elif isinstance(kind, mi.DateType):
            item.clear()
            if extra.get(FORM) == "month":
                item.update({"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$", "description": f"YYYY-MM; {_YEARS}"})
            else:
                item.update({"type": "string", "format": "date", "description": f"YYYY-MM-DD; {_YEARS}"})
        parameter: dict[str, Any] = {"name": f.encode_name, "in": "query", "required": f.required, "schema": schema}
        if repeated:
            parameter["explode"] = True
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


# -- the document and the answer check -----------------------------------------------------------------

REF_TEMPLATE: Final = "#/components/schemas/{name}"


def schemas(types: Iterable[Any]) -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    """The JSON Schema of each of ``types`` (a ``$ref`` for a ``Struct``) and the components they
    refer to, for the OpenAPI document."""
    unique = list(dict.fromkeys(types))
    refs, components = msgspec.json.schema_components(unique, schema_hook=_schema_hook, ref_template=REF_TEMPLATE)
    return dict(zip(unique, refs, strict=True)), components


class UndeclaredAnswer(Exception):
    """A handler's answer does not match the type its route declares: a programmer error."""


def check_answer(raw: bytes, shape: Any) -> None:
    """Raise ``UndeclaredAnswer`` unless the JSON ``raw`` is an instance of ``shape``."""
    try:
        msgspec.json.decode(raw, type=shape)
    except msgspec.ValidationError as exc:
        raise UndeclaredAnswer(str(exc)) from None

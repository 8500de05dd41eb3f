"""JSON Schemas of the public API, used by the OpenAPI document (SPEC §5).

A request body's schema is also what the edge enforces: ``closed`` marks every object in it
``additionalProperties: false`` (``Route`` applies it), and ``validation.json_body`` refuses
exactly the fields that schema does not name, so the document and the check cannot drift.
"""

from __future__ import annotations

import copy
from typing import Any

from consult.model import instant
from consult.model.vocabulary import DEFAULT, OUTCOMES, STATUSES, URGENCIES, Vocabulary
from consult.services.paging import DEFAULT_LIMIT, MAX_LIMIT, MAX_POSITION

S = dict[str, Any]

# The enums of the taxonomy's names: each one list object, shared by every schema that names it,
# so that the OpenAPI document replaces it with the names of the running service's own policy
# (`taxonomy_enums`; consult/http/openapi.py). The lists here are those of the shipped taxonomy.
CATEGORY_NAMES: list[str] = sorted(DEFAULT.categories)
CLIENT_CATEGORY_NAMES: list[str] = sorted(DEFAULT.client_categories)
PURPOSE_NAMES: list[str] = sorted(DEFAULT.purposes)
CLIENT_PURPOSE_NAMES: list[str] = sorted(DEFAULT.client_purposes)
ROLE_NAMES: list[str] = sorted(DEFAULT.roles)


def taxonomy_enums(vocabulary: Vocabulary) -> dict[int, list[str]]:
    """``id`` of each shared enum list -> the same enum for ``vocabulary``."""
    return {
        id(CATEGORY_NAMES): sorted(vocabulary.categories),
        id(CLIENT_CATEGORY_NAMES): sorted(vocabulary.client_categories),
        id(PURPOSE_NAMES): sorted(vocabulary.purposes),
        id(CLIENT_PURPOSE_NAMES): sorted(vocabulary.client_purposes),
        id(ROLE_NAMES): sorted(vocabulary.roles),
    }

STR: S = {"type": "string"}
NSTR: S = {"type": ["string", "null"]}
TS: S = {"type": ["string", "null"], "format": "date-time"}

# -- query parameters: as ``validation`` reads them (query_int, query_instant, decode_cursor) ----------

Q = tuple[str, S, str]
_YEARS = f"{instant.EARLIEST.year}..{instant.LATEST.year - 1}"
LIMIT_QUERY: Q = ("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                  f"at most this many, 1..{MAX_LIMIT} in ASCII digits (default {DEFAULT_LIMIT})")
CURSOR_QUERY: Q = ("cursor", {"type": "string", "maxLength": 200}, "the `next` of the previous page")
#: A leaf index or tree size of the audit log.
INDEX: S = {"type": "integer", "minimum": 0, "maximum": MAX_POSITION}
#: A time with its zone, or a date meaning a moment of that day in Helsinki.
TIME_OR_DATE: S = {"type": "string", "maxLength": instant.MAX_LENGTH,
                   "description": f"ISO 8601 time with zone, or a date YYYY-MM-DD (Helsinki); years {_YEARS}"}
#: A time with its zone only.
TIME: S = {"type": "string", "format": "date-time", "maxLength": instant.MAX_LENGTH,
           "description": f"ISO 8601 time with zone; years {_YEARS}"}
MONTH: S = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$", "description": f"YYYY-MM; years {_YEARS}"}

ERROR: S = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": STR, "message": STR},
        }
    },
}

ME: S = {
    "type": "object",
    "required": ["id", "org", "roles", "name"],
    "properties": {"id": STR, "org": STR, "roles": {"type": "array", "items": STR}, "name": STR},
}

EXPERT: S = {
    "type": "object",
    "required": ["id", "name", "org", "topics", "pools", "languages", "on_duty", "presence"],
    "properties": {
        "id": STR, "name": STR, "org": STR,
        "topics": {"type": "array", "items": STR},
        "pools": {"type": "array", "items": STR},
        "languages": {"type": "array", "items": STR},
        "on_duty": {"type": "boolean"},
        "presence": {"type": "string", "enum": ["online", "offline"]},
        "updated_at": TS,
    },
}

EXPERT_PUT: S = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 200},
        "topics": {"type": "array", "items": STR, "maxItems": 50},
        "pools": {"type": "array", "items": STR, "maxItems": 50},
        "languages": {"type": "array", "items": STR, "maxItems": 50},
        "on_duty": {"type": "boolean"},
    },
}

PARTICIPANT: S = {
    "type": "object",
    "properties": {"user_id": STR, "org": STR, "role": STR, "added_at": TS},
}

CONSULTATION: S = {
    "type": "object",
    "required": ["id", "topic", "urgency", "question", "purpose", "target_org", "status", "created_at"],
    "properties": {
        "id": STR, "topic": STR,
        "urgency": {"type": "string", "enum": list(URGENCIES)},
        "question": STR,
        "purpose": {"type": "string", "enum": PURPOSE_NAMES},
        "origin_org": STR, "created_by": STR, "target_org": STR,
        "pool": NSTR, "expert_id": NSTR, "client_ref": NSTR, "case_ref": NSTR,
        "status": {"type": "string", "enum": list(STATUSES)},
        "claimed_by": NSTR, "outcome": NSTR, "outcome_note": NSTR,
        "flagged_categories": {"type": "array", "items": STR},
        "created_at": TS, "claimed_at": TS, "first_response_at": TS, "closed_at": TS,
        "participants": {"type": "array", "items": PARTICIPANT},
        "offered_to": {"type": "integer"},
    },
}

CONSULTATION_NEW: S = {
    "type": "object",
    "required": ["topic", "urgency", "question", "purpose", "target_org"],
    "properties": {
        "topic": STR,
        "urgency": {"type": "string", "enum": list(URGENCIES)},
        "question": {"type": "string", "minLength": 1, "maxLength": 10000},
        "purpose": {"type": "string", "enum": PURPOSE_NAMES},
        "target_org": STR,
        "expert_id": STR,
        "pool": STR,
        "client_ref": STR,
        "case_ref": {"type": "string", "maxLength": 128},
        "sensitive_confirmation": None,  # set below
    },
}

ITEM_IN: S = {
    "type": "object",
    "required": ["category", "value"],
    "properties": {
        "category": {"type": "string", "enum": CATEGORY_NAMES},
        "value": {"type": ["string", "number"], "description": "A boolean is refused: write it as text"},
        "consent_id": STR,
        "referral": {
            "type": "object",
            "description": "The recorded ground of a sosiaalihuoltolaki 35 § 2 mom. contact without consent",
            "required": ["condition", "justification", "why_no_consent"],
            "properties": {
                "condition": {"type": "string", "enum": ["unable_to_look_after_self", "child_interest"]},
                "justification": {"type": "string", "minLength": 1, "maxLength": 2000},
                "why_no_consent": {"type": "string", "minLength": 1, "maxLength": 2000,
                                   "description": "Why the person's consent could not be obtained"},
            },
        },
    },
}

ITEM_OUT: S = {
    "type": "object",
    "required": ["category"],
    "properties": {
        "category": STR,
        "value": {"type": ["string", "number", "boolean"]},
        "consent_id": STR,
        "withheld": {"type": "boolean"},
        "reason": STR, "rule": STR, "citation": STR,
        "consent": {"type": "object", "properties": {"id": STR, "status": STR, "since": TS}},
        "referral": {"type": "object", "properties": {"condition": STR}},
    },
}

SENSITIVE_PASSAGE: S = {
    "type": "object",
    "required": ["category", "start", "end", "withheld_from"],
    "description": "A passage of the free text that looks like a category the policy withholds from a "
                   "recipient in another organisation (policies/signals.toml); start/end index the text "
                   "as sent.",
    "properties": {
        "category": STR, "start": {"type": "integer", "minimum": 0}, "end": {"type": "integer", "minimum": 0},
        "signal": STR,
        "withheld_from": {"type": "array", "items": {"type": "object", "properties": {
            "recipient": {"type": "object", "properties": {"user_id": NSTR, "org": STR, "role": STR}},
            "rule": STR, "citation": STR, "reason": STR}}},
    },
}

SENSITIVE_CONFIRMATION: S = {
    "type": "object",
    "required": ["reason", "categories"],
    "description": "The sender confirms free text that was flagged: the categories they were shown and why "
                   "the text must say it. Recorded in the audit log (the reason beside it); the reason must "
                   "not contain identifiers.",
    "properties": {
        "reason": {"type": "string", "minLength": 10, "maxLength": 1000},
        "categories": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": CATEGORY_NAMES}},
    },
}

SENSITIVE_ERROR: S = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": STR, "message": STR,
                           "categories": {"type": "array", "items": STR},
                           "flagged": {"type": "array", "items": SENSITIVE_PASSAGE}},
        }
    },
}

CONSULTATION_NEW["properties"]["sensitive_confirmation"] = SENSITIVE_CONFIRMATION
CONSULTATION["properties"]["outcome_flagged_categories"] = {
    "type": "array", "items": STR,
    "description": "categories the close note looked like, sent on the closer's confirmation"}
CONSULTATION["properties"]["sensitive"] = {"type": "array", "items": SENSITIVE_PASSAGE}

MESSAGE: S = {
    "type": "object",
    "required": ["id", "consultation_id", "author", "text", "data", "created_at"],
    "properties": {
        "id": STR,
        "consultation_id": STR,
        "author": {"type": "object", "properties": {"id": STR, "name": STR, "org": STR, "role": STR}},
        "text": STR,
        "data": {"type": "array", "items": ITEM_OUT},
        "created_at": TS,
        "read_by": {"type": "array", "items": {"type": "object", "properties": {"user_id": STR, "read_at": TS}}},
        "flagged_categories": {"type": "array", "items": STR,
                               "description": "categories the free text looked like, sent on the sender's "
                                              "confirmation"},
        "policy": {"type": "object"},
        "identifiers": {"type": "array", "items": {"type": "object"}},
        "sensitive": {"type": "array", "items": SENSITIVE_PASSAGE},
    },
}

WITHHELD: S = {
    "type": "object",
    "properties": {
        "recipient": {"type": "object", "properties": {"user_id": NSTR, "org": STR, "role": STR}},
        "index": {"type": ["integer", "null"]},
        "category": STR, "effect": STR, "rule": STR, "citation": STR, "reason": STR,
    },
}

PREVIEW: S = {
    "type": "object",
    "required": ["policy", "identifiers"],
    "properties": {
        "policy": {"type": "object", "properties": {"version": STR, "withheld": {"type": "array", "items": WITHHELD}}},
        "identifiers": {"type": "array", "items": {"type": "object", "properties": {"kind": STR, "action": STR}}},
        "sensitive": {"type": "array", "items": SENSITIVE_PASSAGE},
    },
}

MESSAGE_NEW: S = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "maxLength": 10000},
        "data": {"type": "array", "items": ITEM_IN, "maxItems": 50},
        "sensitive_confirmation": SENSITIVE_CONFIRMATION,
    },
}

READ_RECEIPT: S = {
    "type": "object",
    "properties": {"consultation_id": STR, "user_id": STR, "message_id": STR, "read_at": TS},
}


SECRECY: S = {
    "type": "object",
    "description": "The secrecy marking of the answer, per language (julkisuuslaki 621/1999 § 24(1) 25 k.)",
    "required": ["fi", "sv", "en"],
    "properties": {"fi": STR, "sv": STR, "en": STR},
}


def marked(schema: S) -> S:
    """An object schema with the ``secrecy`` field of an answer that carries secret client data."""
    return {**schema, "required": [*schema.get("required", ()), "secrecy"],
            "properties": {**schema["properties"], "secrecy": SECRECY}}


def page(item: S) -> S:
    return {
        "type": "object",
        "required": ["items", "next"],
        "properties": {"items": {"type": "array", "items": item}, "next": NSTR},
    }


CLOSE: S = {
    "type": "object",
    "required": ["outcome"],
    "properties": {"outcome": {"type": "string", "enum": sorted(OUTCOMES)},
                   "note": {"type": "string", "maxLength": 2000},
                   # A note that looks like a category withheld from another organisation's participant.
                   "sensitive_confirmation": SENSITIVE_CONFIRMATION},
}
ADD_PARTICIPANT: S = {"type": "object", "required": ["user_id"], "properties": {"user_id": STR}}
MARK_READ: S = {"type": "object", "required": ["message_id"], "properties": {"message_id": STR}}
HEALTH: S = {"type": "object", "required": ["status"], "properties": {"status": STR}}
_CHECK: S = {"type": "string", "enum": ["ok", "failed", "skipped"]}
READY: S = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["ready"]}}}
NOT_READY: S = {
    "type": "object",
    "required": ["status", "failed", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["not_ready"]},
        "failed": {"type": "array",
                   "items": {"type": "string", "enum": ["database", "schema", "keys", "policy", "identity"]}},
        "checks": {
            "type": "object",
            "required": ["database", "schema", "keys", "policy", "identity"],
            "properties": {"database": _CHECK, "schema": _CHECK, "keys": _CHECK, "policy": _CHECK,
                           "identity": _CHECK},
        },
    },
}

NOTIFICATION: S = {
    "type": ["object", "null"],
    "properties": {
        "notifier": {"type": "object", "properties": {"user_id": STR, "name": STR, "org": STR, "role": STR}},
        "rule_id": STR, "basis": STR, "citation": STR, "policy_version": STR, "notified_at": TS,
    },
}
CHILD_WELFARE_NOTIFICATION_NEW: S = {
    "type": "object",
    "required": ["target_org", "client_ref", "text"],
    "properties": {
        "target_org": STR,
        "client_ref": {"type": "string", "description": "The client whose matter gave rise to the concern"},
        "text": {"type": "string", "minLength": 1, "maxLength": 10000, "description": "The concern"},
        "topic": STR,
        "sensitive_confirmation": SENSITIVE_CONFIRMATION,
    },
}
CHILD_WELFARE_NOTIFICATION: S = {
    **CONSULTATION,
    "properties": {**CONSULTATION["properties"], "notification": NOTIFICATION},
}


def closed(schema: S) -> S:
    """A copy of a request schema with ``additionalProperties: false`` on every object that names
    its properties: the edge refuses any other field (``validation.refuse_unknown``). The taxonomy's
    enum lists stay the shared objects, so that ``taxonomy_enums`` still finds them in the copy."""
    shared = (CATEGORY_NAMES, CLIENT_CATEGORY_NAMES, PURPOSE_NAMES, CLIENT_PURPOSE_NAMES, ROLE_NAMES)
    result = copy.deepcopy(schema, memo={id(names): names for names in shared})
    stack = [result]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("properties"), dict):
            node.setdefault("additionalProperties", False)
            stack.extend(node["properties"].values())
        if isinstance(node.get("items"), dict):
            stack.append(node["items"])
    return result


#: Where an open consultation stands in routing (GET /api/v1/consultations/{id}; null once claimed
#: or closed): the outcome told at creation, computed afresh, and the stored step.
ROUTING_STATUS: S = {
    "type": ["object", "null"],
    "properties": {
        "state": {"type": "string", "enum": ["offered", "all_busy", "nobody_on_duty"]},
        "offered_to": {"type": "integer"}, "on_duty": {"type": "integer"}, "at_capacity": {"type": "integer"},
        "sla_seconds": {"type": "integer"}, "sla_due_at": TS, "next_on_duty": TS,
        "expected_wait_seconds": {"type": ["integer", "null"]}, "queue_position": {"type": "integer"},
        "stage": NSTR, "offers": {"type": ["integer", "null"]}, "next_step_at": TS, "escalated_pool": NSTR,
        "as_of": TS,
    },
}
CONSULTATION["properties"]["routing"] = ROUTING_STATUS

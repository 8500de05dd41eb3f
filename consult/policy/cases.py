"""Named policy test cases (``<file>.cases.toml`` beside each policy file): reading them
into requests with expected decisions, and running them with rule coverage, for the profile
the policy was loaded with. A case whose
category is an identifier pseudo-category (``identifier.<kind>``) is decided as an
identifier in free text."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from consult.model.identifiers import ClientRef
from consult.policy.engine import PolicyEngine
from consult.policy.loader import CASES_SUFFIX, PolicyError, subset
from consult.policy.model import (
    FINAL_EFFECTS,
    Consent,
    Decision,
    ItemRequest,
    Party,
    Prohibition,
    Referral,
)
from consult.policy.rules import GUARD_IDS, Policy

_CASE_KEYS = frozenset({"name", "sender", "recipient", "category", "purpose", "client",
                        "consent", "prohibitions", "referral", "now", "expect", "rule",
                        "basis", "flags", "note"})
_CONSENT_KEYS = frozenset({"use", "id", "version", "client", "status", "categories",
                           "recipient_orgs", "recipient_roles", "recipient_users", "purposes",
                           "valid_from", "valid_until", "disclosing_org"})


@dataclass(frozen=True, slots=True)
class PolicyCase:
    name: str
    file: str
    line: int
    request: ItemRequest
    expect: str
    rule: str
    basis: str | None
    flags: frozenset[str] | None

    def failure(self, decision: Decision) -> str | None:
        """What differs between the decision and the expectation, or None."""
        wrong = []
        if decision.effect != self.expect or decision.rule_id != self.rule:
            wrong.append(f"expected {self.expect} by {self.rule}, "
                         f"got {decision.effect} by {decision.rule_id}")
        if self.basis is not None and decision.basis != self.basis:
            wrong.append(f"expected basis {self.basis}, got {decision.basis}")
        if self.flags is not None and decision.flags != self.flags:
            wrong.append(f"expected flags {sorted(self.flags)}, got {sorted(decision.flags)}")
        return "; ".join(wrong) or None

    def decide(self, engine: PolicyEngine) -> Decision:
        """The engine's decision for this case (data item or identifier in text)."""
        return engine.evaluate(self.request)


@dataclass(frozen=True, slots=True)
class CaseFile:
    """One cases file and the policy layer it tests: the taxonomy, the baseline and, for a
    municipal file, that file (plus any organisations the cases declare)."""

    name: str
    tested_file: str
    policy: Policy
    cases: tuple[PolicyCase, ...]


def case_files(directory: Path, policy: Policy) -> list[CaseFile]:
    """The cases files for the files ``policy`` loaded. A cases file for a policy file of
    another profile is left out; one for a file that does not exist is an error."""
    loaded = {f.name for f in policy.sources}
    present = {p.name for p in Path(directory).glob("*.toml") if not p.name.endswith(CASES_SUFFIX)}
    out = []
    for path in sorted(Path(directory).glob("*" + CASES_SUFFIX)):
        tested = path.name[: -len(CASES_SUFFIX)] + ".toml"
        if tested in present and tested not in loaded:
            continue
        out.append(load_cases(path, policy))
    return out


def load_cases(path: Path, policy: Policy) -> CaseFile:
    name = path.name
    tested = name[: -len(CASES_SUFFIX)] + ".toml"
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(name, None, f"invalid TOML: {exc}") from None
    except OSError as exc:
        raise PolicyError(name, None, f"cannot read: {exc}") from None
    files = {f.name: f for f in policy.sources}
    if tested not in files:
        raise PolicyError(name, None, f"tests {tested}, which is not a loaded policy file")
    layer = {f.name for f in policy.sources if f.kind == "baseline"} | {tested}
    orgs = data.get("organisations", {})
    if not isinstance(orgs, dict) or any(k not in policy.org_kinds for k in orgs.values()):
        raise PolicyError(name, _line(text, "[organisations]"),
                          "[organisations] maps org id to a known org kind")
    layered = subset(policy, layer, orgs)
    reader = _Reader(name, text, data, layered)
    raw = data.get("case", [])
    if not isinstance(raw, list) or not all(isinstance(spec, dict) for spec in raw):
        raise PolicyError(name, _line(text, "case"), "cases must be an array of tables: [[case]]")
    cases = tuple(reader.case(i, spec) for i, spec in enumerate(raw))
    return CaseFile(name, tested, layered, cases)


@dataclass(frozen=True, slots=True)
class CaseResult:
    file: str
    case: PolicyCase
    decision: Decision
    failure: str | None


@dataclass(frozen=True, slots=True)
class CaseReport:
    results: tuple[CaseResult, ...]
    unexercised: tuple[str, ...]  # rule ids (file:rule) no case decided

    @property
    def ok(self) -> bool:
        return not self.unexercised and all(r.failure is None for r in self.results)


def run_cases(directory: Path, policy: Policy) -> CaseReport:
    """Run every cases file against its layer; report failures and rules no case decided."""
    results: list[CaseResult] = []
    decided: set[tuple[str, str]] = set()
    for cf in case_files(directory, policy):
        engine = PolicyEngine(cf.policy)
        for case in cf.cases:
            decision = case.decide(engine)
            results.append(CaseResult(cf.name, case, decision, case.failure(decision)))
            decided.add((cf.tested_file, decision.rule_id))
            decided.add(("", decision.rule_id))
    unexercised = [f"{r.source}:{r.id}" for r in policy.rules if (r.source, r.id) not in decided]
    unexercised += [f"guard:{g}" for g in GUARD_IDS if ("", g) not in decided]
    return CaseReport(tuple(results), tuple(unexercised))


class _Reader:
    """Turns the TOML tables of one cases file into ``PolicyCase`` values."""

    def __init__(self, name: str, text: str, data: dict[str, Any], policy: Policy) -> None:
        self.name, self.text, self.data, self.policy = name, text, data, policy
        meta = data.get("meta", {})
        self.now = meta.get("now")
        self.client = meta.get("client", "client-a")
        self.consents = data.get("consents", {})

    def error(self, index: int, message: str) -> PolicyError:
        return PolicyError(self.name, _line(self.text, *(["[[case]]"] * (index + 1))), message)

    def case(self, index: int, spec: dict[str, Any]) -> PolicyCase:
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise self.error(index, f"case #{index + 1} needs a name")
        for key in spec:
            if key not in _CASE_KEYS:
                raise self.error(index, f"case {name!r}: unknown key {key!r}")
        expect, rule = spec.get("expect"), spec.get("rule")
        if expect not in FINAL_EFFECTS:
            raise self.error(index, f"case {name!r}: expect must be permit, deny or redact")
        if rule not in set(self.policy.rule_ids) | set(GUARD_IDS):
            raise self.error(index, f"case {name!r}: unknown rule {rule!r}")
        if spec.get("category") in self.policy.identifiers:
            if expect not in ("permit", "redact"):
                raise self.error(index, f"case {name!r}: an identifier in text is permitted "
                                 "or redacted; expect must be permit or redact")
            if "consent" in spec or "referral" in spec:
                raise self.error(index, f"case {name!r}: no consent or referral covers an "
                                 "identifier in text")
        now = self._time(spec.get("now", self.now), index, name)
        client = spec.get("client", self.client)
        client_ref = None if client is False else ClientRef(str(client))
        try:
            request = ItemRequest(
                sender=_party(spec["sender"]), recipient=_party(spec["recipient"]),
                category=spec["category"], purpose=spec["purpose"], client_ref=client_ref,
                consent=self._consent(spec.get("consent"), index, name, _party(spec["sender"]).org),
                prohibitions=tuple(self._prohibition(p) for p in spec.get("prohibitions", [])),
                referral=Referral(**spec["referral"]) if "referral" in spec else None, now=now)
        except (KeyError, TypeError, ValueError) as exc:
            raise self.error(index, f"case {name!r}: malformed ({exc})") from None
        flags = spec.get("flags")
        return PolicyCase(name, self.name, _line(self.text, f'"{name}"') or 0, request, expect,
                          rule, spec.get("basis"), None if flags is None else frozenset(flags))

    def _time(self, value: Any, index: int, name: str) -> datetime:
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise self.error(index, f"case {name!r}: now must be a date-time with an offset")
        return value

    def _consent(self, value: Any, index: int, name: str, sender_org: str) -> Consent | None:
        """The case's consent; unless it names ``disclosing_org``, it is given for the case's
        sender's organisation."""
        if value is None:
            return None
        spec: dict[str, Any] = {"use": value} if isinstance(value, str) else dict(value)
        base = spec.pop("use", None)
        if base is not None:
            if base not in self.consents:
                raise self.error(index, f"case {name!r}: unknown consent {base!r}")
            spec = {**self.consents[base], "id": spec.get("id", base), **spec}
        unknown = set(spec) - _CONSENT_KEYS
        if unknown:
            raise self.error(index, f"case {name!r}: unknown consent keys {sorted(unknown)}")
        return Consent(
            id=spec["id"], version=spec.get("version", 1),
            client_ref=spec.get("client", self.client), status=spec.get("status", "active"),
            categories=frozenset(spec.get("categories", [])),
            recipient_orgs=frozenset(spec.get("recipient_orgs", [])),
            recipient_roles=frozenset(spec.get("recipient_roles", [])),
            recipient_users=frozenset(spec.get("recipient_users", [])),
            purposes=frozenset(spec.get("purposes", [])),
            valid_from=spec["valid_from"], valid_until=spec.get("valid_until"),
            disclosing_org=spec.get("disclosing_org", sender_org))

    def _prohibition(self, spec: dict[str, Any]) -> Prohibition:
        return Prohibition(spec.get("client", self.client), spec.get("category"), spec.get("org"))


def _party(text: str) -> Party:
    parts = text.split("/")
    if len(parts) not in (2, 3):
        raise ValueError(f"party {text!r} must be org/role or org/role/user")
    return Party(*parts)


def _line(text: str, *needles: str) -> int | None:
    pos, found = 0, None
    for needle in needles:
        at = text.find(needle, pos)
        if at < 0:
            break
        found, pos = at, at + len(needle)
    return None if found is None else text.count("\n", 0, found) + 1

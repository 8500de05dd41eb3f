"""Loads and validates the policy files in ``policies/`` (TOML): the taxonomy, the
baseline rules and any municipal files that may only restrict. Every error names the file
and the line. Reads files at start-up only; the result is immutable."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from consult.policy.model import IDENTIFIER_KINDS, RULE_EFFECTS
from consult.policy.signals import SignalSet, parse_signals
from consult.policy.widening import first_widening
from consult.policy.rules import (
    GUARD_IDS, IDENTIFIER_PREFIX, RELATIONS, SENSITIVITIES, Category, Guard, Identifier,
    PartyScope, Policy, Purpose, Rule, SourceFile, frozen_mapping,
)

CASES_SUFFIX = ".cases.toml"
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_RULE_KEYS = frozenset({"id", "effect", "sender", "recipient", "relation", "categories",
                        "purposes", "requires_referral", "statutory", "citation",
                        "needs_check", "reason", "note"})
_PARTY_KEYS = frozenset({"org_kinds", "orgs", "roles"})
_TAXONOMY_KEYS = frozenset({"meta", "categories", "identifiers", "org_kinds", "organisations",
                            "roles", "purposes", "guards"})
_RULESET_KEYS = frozenset({"meta", "rule"})


class PolicyError(Exception):
    """A policy file is malformed or inconsistent. ``str()`` is ``file:line: message``."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file, self.line, self.message = file, line, message
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}")


class _Source:
    """One file's name, text and parsed data, with line lookup for error messages."""

    def __init__(self, path: Path) -> None:
        self.name = path.name
        try:
            self.text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(self.name, None, f"cannot read: {exc}") from None
        try:
            self.data: dict[str, Any] = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            match = re.search(r"at line (\d+)", str(exc))
            raise PolicyError(self.name, int(match.group(1)) if match else None,
                              f"invalid TOML: {exc}") from None

    def line_of(self, *needles: str, start: int = 0) -> int | None:
        """Line of the last of ``needles``, each searched after the previous one, from
        offset ``start``."""
        pos, found = start, None
        for needle in needles:
            at = self.text.find(needle, pos)
            if at < 0:
                break
            found, pos = at, at + len(needle)
        return None if found is None else self.text.count("\n", 0, found) + 1

    def error(self, message: str, *needles: str, start: int = 0) -> PolicyError:
        return PolicyError(self.name, self.line_of(*needles, start=start), message)

    def header_offset(self, header: str, index: int) -> int:
        """Offset of the ``index``-th line that is exactly ``header`` (e.g. ``[[rule]]``)."""
        found = list(re.finditer(rf"^[ \t]*{re.escape(header)}[ \t]*(#.*)?$", self.text,
                                 re.MULTILINE))
        return found[index].start() if index < len(found) else 0

    def canonical(self) -> str:
        return json.dumps(self.data, sort_keys=True, ensure_ascii=False,
                          separators=(",", ":"), default=str)


def load_policy(directory: Path, organisations: Mapping[str, str] | None = None) -> Policy:
    """Load every ``*.toml`` in ``directory`` except ``*.cases.toml``.

    ``organisations`` (org id -> org kind) adds deployment organisations to those of the
    taxonomy; organisation ids are configuration. The policy version is the SHA-256 over
    the canonical contents of all loaded files, sorted by name, and those organisations.
    """
    paths = sorted(p for p in Path(directory).glob("*.toml") if not p.name.endswith(CASES_SUFFIX))
    if not paths:
        raise PolicyError(str(directory), None, "no policy files (*.toml) found")
    sources = [_Source(p) for p in paths]
    by_kind: dict[str, list[_Source]] = {}
    for src in sources:
        kind = _meta(src).get("kind")
        if kind not in ("taxonomy", "baseline", "municipal", "signals"):
            raise src.error("[meta] kind must be taxonomy, baseline, municipal or signals",
                            "kind")
        by_kind.setdefault(kind, []).append(src)
    for kind in ("taxonomy", "baseline"):
        if len(by_kind.get(kind, [])) != 1:
            raise PolicyError(str(directory), None, f"exactly one {kind} file is required")
    if not by_kind.get("signals"):
        raise PolicyError(str(directory), None, "a signals file (kind = \"signals\") is required: "
                          "free text to another organisation is checked against it")
    policy = _taxonomy(by_kind["taxonomy"][0], organisations or {})
    policy = replace(policy, signals=_signals(by_kind["signals"], policy))
    seen: set[str] = set(GUARD_IDS)
    baseline_rules = _rules(by_kind["baseline"][0], policy, seen, involves=None)
    baseline = replace(policy, rules=baseline_rules)
    rules = list(baseline_rules)
    for src in by_kind.get("municipal", []):
        org = _meta(src).get("org")
        if not isinstance(org, str) or org not in policy.organisations:
            raise src.error(f"[meta] org must be a known organisation, got {org!r}", "org")
        own = _rules(src, policy, seen, involves=org)
        for rule in own:
            _check_restricts(src, rule, baseline)
        rules.extend(own)
    files = tuple(SourceFile(s.name, _meta(s)["kind"], _meta(s).get("org"), s.canonical())
                  for s in sources)
    return replace(policy, rules=tuple(rules), sources=files,
                   version=policy_version(files, organisations or {}))


def policy_version(files: tuple[SourceFile, ...], organisations: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.name):
        digest.update(f"{f.name}\n{f.canonical}\n".encode())
    if organisations:
        digest.update(("organisations\n" + json.dumps(dict(organisations), sort_keys=True)
                       + "\n").encode())
    return digest.hexdigest()


def subset(policy: Policy, file_names: set[str], organisations: Mapping[str, str] | None = None
           ) -> Policy:
    """The policy made of only the named files (the taxonomy is always kept), with its own
    version: used to test each file against the layers beneath it."""
    files = tuple(f for f in policy.sources if f.name in file_names or f.kind == "taxonomy")
    names = {f.name for f in files}
    orgs = dict(policy.organisations)
    orgs.update(organisations or {})
    return replace(policy, rules=tuple(r for r in policy.rules if r.source in names),
                   sources=files, organisations=frozen_mapping(orgs),
                   version=policy_version(files, organisations or {}))


# -- taxonomy -------------------------------------------------------------------------------

def _meta(src: _Source) -> dict[str, Any]:
    meta = src.data.get("meta")
    if not isinstance(meta, dict):
        raise src.error("missing [meta] table with kind")
    return meta


def _table(src: _Lines, data: Any, where: str, *needles: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise src.error(f"{where} must be a table", *needles)
    return data


def _keys(src: _Lines, data: dict, allowed: frozenset[str] | set[str], where: str,
          *needles: str) -> None:
    for key in data:
        if key not in allowed:
            raise src.error(f"unknown key {key!r} in {where}", *needles, key)


def _text(src: _Lines, data: dict, key: str, where: str, *needles: str,
          required: bool = True) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise src.error(f"{where}: {key} must be a non-empty string", *needles)
    return value.strip()


def _flag(src: _Lines, data: dict, key: str, where: str, *needles: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise src.error(f"{where}: {key} must be true or false", *needles, key)
    return value


def _names(src: _Lines, value: Any, known: Any, what: str, where: str,
           *needles: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise src.error(f"{where}: {what}s must be a list of strings", *needles)
    for v in value:
        if v not in known:
            raise src.error(f"{where}: unknown {what} {v!r}", *needles, f'"{v}"')
    return frozenset(value)


def _taxonomy(src: _Source, extra_orgs: Mapping[str, str]) -> Policy:
    _keys(src, src.data, _TAXONOMY_KEYS, "taxonomy")
    categories = _categories(src)
    identifiers = _identifiers(src, categories)
    kinds = frozenset(_table(src, src.data.get("org_kinds"), "[org_kinds]"))
    return Policy(version="", categories=frozen_mapping(categories),
                  identifiers=frozen_mapping(identifiers), org_kinds=kinds,
                  organisations=frozen_mapping(_organisations(src, kinds, extra_orgs)),
                  roles=frozenset(_table(src, src.data.get("roles"), "[roles]")),
                  purposes=frozen_mapping(_purposes(src, categories, identifiers)),
                  guards=frozen_mapping(_guards(src)), rules=(), sources=())


def _entries(src: _Source, section: str) -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
    """The sub-tables of ``[section]`` with a header and the needles that locate each."""
    out = []
    for name, spec in _table(src, src.data.get(section), f"[{section}]").items():
        at = (f"[{section}", name)
        out.append((name, _table(src, spec, f"[{section}.{name}]", *at), at))
    return out


def _categories(src: _Source) -> dict[str, Category]:
    cats = {}
    for name, spec, at in _entries(src, "categories"):
        hdr = f"[categories.{name}]"
        _keys(src, spec, {"description", "sensitivity", "client_data"}, hdr, *at)
        if spec.get("sensitivity") not in SENSITIVITIES:
            raise src.error(f"{hdr}: sensitivity must be one of {', '.join(SENSITIVITIES)}",
                            *at, "sensitivity")
        client_data = _flag(src, spec, "client_data", hdr, *at) if "client_data" in spec else True
        cats[name] = Category(name, _text(src, spec, "description", hdr, *at),
                              spec["sensitivity"], client_data)
    return cats


def _identifiers(src: _Source, categories: Mapping[str, Category]) -> dict[str, Identifier]:
    """``[identifiers."identifier.<kind>"]``: one entry for every kind the scanner finds
    besides the identity code, so that the policy decides every identifier it can meet."""
    for name in categories:
        if name.startswith(IDENTIFIER_PREFIX):
            raise src.error(f"[categories.{name}]: {IDENTIFIER_PREFIX}* names are identifiers "
                            "in text; declare it under [identifiers]", "[categories", name)
    found = {}
    for name, spec, at in _entries(src, "identifiers"):
        hdr = f"[identifiers.{name}]"
        kind = name[len(IDENTIFIER_PREFIX):] if name.startswith(IDENTIFIER_PREFIX) else None
        if kind not in IDENTIFIER_KINDS:
            raise src.error(f"{hdr}: unknown identifier kind; name it identifier.<kind> with "
                            f"kind one of {', '.join(sorted(IDENTIFIER_KINDS))} (an identity "
                            "code is the category identity.hetu)", *at)
        _keys(src, spec, {"description", "sensitivity"}, hdr, *at)
        if spec.get("sensitivity") not in SENSITIVITIES:
            raise src.error(f"{hdr}: sensitivity must be one of {', '.join(SENSITIVITIES)}",
                            *at, "sensitivity")
        found[name] = Identifier(name, kind, _text(src, spec, "description", hdr, *at),
                                 spec["sensitivity"])
    missing = sorted(IDENTIFIER_PREFIX + k for k in IDENTIFIER_KINDS
                     if IDENTIFIER_PREFIX + k not in found)
    if missing:
        raise src.error(f"missing identifiers: {', '.join(missing)}", "[identifiers")
    return found


def _category_names(src: _Lines, value: Any, categories: Mapping[str, Category],
                    identifiers: Mapping[str, Identifier], where: str,
                    *needles: str) -> frozenset[str]:
    """Data-item categories and identifier pseudo-categories, each known."""
    if isinstance(value, list):
        for v in value:
            if isinstance(v, str) and v.startswith(IDENTIFIER_PREFIX) and v not in identifiers:
                raise src.error(f"{where}: unknown identifier kind {v!r} (known: "
                                f"{', '.join(sorted(identifiers))})", *needles, f'"{v}"')
    return _names(src, value, set(categories) | set(identifiers), "category", where, *needles)


def _organisations(src: _Source, kinds: frozenset[str], extra: Mapping[str, str]
                   ) -> dict[str, str]:
    orgs = {}
    for org, spec, at in _entries(src, "organisations"):
        hdr = f"[organisations.{org}]"
        _keys(src, spec, {"kind", "name"}, hdr, *at)
        if spec.get("kind") not in kinds:
            raise src.error(f"{hdr}: unknown org kind {spec.get('kind')!r}", *at, "kind")
        orgs[org] = spec["kind"]
    for org, kind in extra.items():
        if kind not in kinds:
            raise PolicyError(src.name, None,
                              f"configured organisation {org!r} has unknown kind {kind!r}")
        orgs[org] = kind
    return orgs


def _purposes(src: _Source, categories: Mapping[str, Category],
              identifiers: Mapping[str, Identifier]) -> dict[str, Purpose]:
    purposes = {}
    for name, spec, at in _entries(src, "purposes"):
        hdr = f"[purposes.{name}]"
        _keys(src, spec, {"description", "categories"}, hdr, *at)
        carried = _category_names(src, spec.get("categories"), categories, identifiers, hdr,
                                  *at)
        purposes[name] = Purpose(name, _text(src, spec, "description", hdr, *at), carried)
    return purposes


def _guards(src: _Source) -> dict[str, Guard]:
    guards = {}
    for gid, spec, at in _entries(src, "guards"):
        hdr = f"[guards.{gid}]"
        if gid not in GUARD_IDS:
            raise src.error(f"unknown guard {gid!r}", *at)
        _keys(src, spec, {"citation", "reason", "needs_check"}, hdr, *at)
        guards[gid] = Guard(gid, _text(src, spec, "citation", hdr, *at),
                            _text(src, spec, "reason", hdr, *at),
                            _flag(src, spec, "needs_check", hdr, *at))
    missing = [g for g in GUARD_IDS if g not in guards]
    if missing:
        raise src.error(f"missing guards: {', '.join(missing)}", "[guards")
    return guards


# -- signals of sensitive categories in free text ------------------------------------------

def _signals(sources: list[_Source], policy: Policy) -> SignalSet:
    """Every signals file, validated against the taxonomy; a category in two files is an error."""
    item_categories = [c for c in policy.categories if c != "identity.hetu"]
    seen: dict[str, str] = {}
    found = []
    for src in sources:
        part = parse_signals(src.data, item_categories, src.error, src.name, src.line_of)
        for cat in part.categories:
            if cat.category in seen:
                raise src.error(f"signals for {cat.category!r} are already in {seen[cat.category]}",
                                "[signals", cat.category)
            seen[cat.category] = src.name
        found.extend(part.categories)
    return SignalSet(categories=tuple(found))


# -- rules ----------------------------------------------------------------------------------

def _rules(src: _Source, policy: Policy, seen: set[str], involves: str | None
           ) -> tuple[Rule, ...]:
    _keys(src, src.data, _RULESET_KEYS, src.name)
    raw = src.data.get("rule", [])
    if not isinstance(raw, list):
        raise src.error("rules must be an array of tables: [[rule]]", "rule")
    rules = []
    for index, spec in enumerate(raw):
        if not isinstance(spec, dict):
            raise src.error("rules must be an array of tables: [[rule]]", "rule")
        rules.append(_rule(src, spec, index, policy, seen, involves))
    return tuple(rules)


def _rule(src: _Lines, spec: dict, index: int, policy: Policy, seen: set[str],
          involves: str | None) -> Rule:
    offset = src.header_offset("[[rule]]", index)
    rid = spec.get("id")
    if not isinstance(rid, str) or not _RULE_ID.match(rid):
        raise PolicyError(src.name, src.line_of("[[rule]]", start=offset),
                          f"rule #{index + 1}: id must be lower-case letters, digits, '.' "
                          "and '-'")
    src = _Located(src, offset)
    at = (f'"{rid}"',)
    where = f"rule {rid}"
    if rid in seen:
        raise src.error(f"duplicate rule id {rid!r}", *at)
    seen.add(rid)
    _keys(src, spec, _RULE_KEYS, where, *at)
    effect = spec.get("effect")
    if effect not in RULE_EFFECTS:
        raise src.error(f"{where}: unknown effect {effect!r} (use one of "
                        f"{', '.join(sorted(RULE_EFFECTS))})", *at, "effect")
    sender = _party(src, spec.get("sender", {}), policy, f"{where} sender", *at, "sender")
    recipient = _party(src, spec.get("recipient", {}), policy, f"{where} recipient",
                       *at, "recipient")
    categories = purposes = None
    if "categories" in spec:
        categories = _category_names(src, spec["categories"], policy.categories,
                                     policy.identifiers, where, *at, "categories")
    if "purposes" in spec:
        purposes = _names(src, spec["purposes"], policy.purposes, "purpose", where,
                          *at, "purposes")
    relation = spec.get("relation")
    if relation is not None and relation not in RELATIONS:
        raise src.error(f"{where}: relation must be same_org or cross_org", *at, "relation")
    requires_referral = _flag(src, spec, "requires_referral", where, *at)
    statutory = _flag(src, spec, "statutory", where, *at)
    if requires_referral and effect != "permit":
        raise src.error(f"{where}: requires_referral only goes with effect permit", *at)
    if categories is not None and not categories.isdisjoint(policy.identifiers) and (
            effect == "permit_with_consent" or requires_referral):
        raise src.error(f"{where}: an identifier in free text is permitted, redacted or "
                        "denied, never by consent or referral", *at, "categories")
    if statutory and effect not in ("permit", "redact"):
        raise src.error(f"{where}: only a permit or redact rule can be statutory (a consent "
                        "never overrides a prohibition; a deny needs no override)", *at)
    citation = _text(src, spec, "citation", where, *at, required=involves is None)
    if statutory and not citation:
        raise src.error(f"{where}: a statutory rule needs a citation", *at)
    _text(src, spec, "note", where, *at, required=False)
    return Rule(id=rid, effect=effect, sender=sender, recipient=recipient,
                categories=categories, purposes=purposes, relation=relation,
                requires_referral=requires_referral, statutory=statutory, citation=citation,
                needs_check=_flag(src, spec, "needs_check", where, *at),
                reason=_text(src, spec, "reason", where, *at), source=src.name,
                line=src.line_of(*at) or 0, involves_org=involves)


def _party(src: _Lines, spec: Any, policy: Policy, where: str, *at: str) -> PartyScope:
    spec = _table(src, spec, where, *at)
    _keys(src, spec, _PARTY_KEYS, where, *at)
    return PartyScope(
        org_kinds=_names(src, spec.get("org_kinds", []), policy.org_kinds, "org kind", where, *at),
        orgs=_names(src, spec.get("orgs", []), policy.organisations, "organisation", where, *at),
        roles=_names(src, spec.get("roles", []), policy.roles, "role", where, *at),
    )


class _Located:
    """A view of a source whose line lookups start at one rule's ``[[rule]]`` header."""

    def __init__(self, src: _Source, offset: int) -> None:
        self._src, self._offset, self.name = src, offset, src.name

    def line_of(self, *needles: str) -> int | None:
        return self._src.line_of(*needles, start=self._offset)

    def error(self, message: str, *needles: str) -> PolicyError:
        return self._src.error(message, *needles, start=self._offset)


_Lines = _Source | _Located

# -- municipal files may only restrict --------------------------------------------------------

def _check_restricts(src: _Source, rule: Rule, baseline: Policy) -> None:
    """A municipal rule that could disclose more than the baseline needs its own citation."""
    if rule.effect == "deny" or rule.citation:
        return
    point = first_widening(baseline, rule)
    if point is not None:
        raise PolicyError(src.name, rule.line, f"rule {rule.id} widens the baseline ({point}) "
                          "and has no citation; a municipal file may only restrict unless it "
                          "cites the law that allows more")

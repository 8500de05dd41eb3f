"""Loads and validates the policy files in ``policies/`` (TOML): the taxonomy, the baseline
of one profile (today's division of social assistance by default) and any municipal files
that may only restrict. Every permit that can apply across organisations must name both of
its bases, a GDPR basis and an exception to secrecy (julkisuuslaki 621/1999 § 29(1)); the
loader refuses one that lacks either. Every error names the file and the line. Reads files
at start-up only; the result is immutable."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from consult.policy.model import IDENTIFIER_KINDS, RULE_EFFECTS
from consult.policy.rules import (
    DECISION_KINDS,
    DECISION_PARTS,
    DEFAULT_PROFILE,
    GDPR_ARTICLES,
    GDPR_SPECIAL_ARTICLES,
    GUARD_IDS,
    IDENTIFIER_PREFIX,
    RELATIONS,
    SECRECY_EXCEPTIONS,
    SENSITIVITIES,
    Category,
    DecisionOf,
    GdprBasis,
    Guard,
    Identifier,
    PartyScope,
    Policy,
    Purpose,
    Rule,
    SecrecyException,
    SourceFile,
    frozen_mapping,
)
from consult.policy.signals import CategorySignals, SignalSet, parse_signals
from consult.policy.widening import first_widening

CASES_SUFFIX = ".cases.toml"
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_PROFILE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_RULE_KEYS = frozenset({"id", "effect", "sender", "recipient", "relation", "categories",
                        "purposes", "requires_referral", "statutory", "citation",
                        "needs_check", "reason", "note", "gdpr", "secrecy"})
_GDPR_KEYS = frozenset({"articles", "law", "needs_check"})
_SECRECY_KEYS = frozenset({"exception", "citation", "needs_check"})
#: A Finnish statute is cited by its number, e.g. 1412/1997; a section by "§".
_STATUTE_NUMBER = re.compile(r"\b\d{1,4}/(19|20)\d{2}\b")
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

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
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


class UnknownProfile(PolicyError):
    """No baseline file of the requested profile."""


def load_policy(directory: Path, organisations: Mapping[str, str] | None = None,
                profile: str = DEFAULT_PROFILE) -> Policy:
    """Load the taxonomy, the baseline of ``profile`` and the municipal files that apply to
    it, from every ``*.toml`` in ``directory`` except ``*.cases.toml``.

    A baseline names its profile in ``[meta] profile`` (default ``today``); a municipal file
    may name the profiles it applies to in ``[meta] profiles`` (default: all). Files of other
    profiles are read and checked for syntax but not loaded. ``organisations`` (org id ->
    org kind) adds deployment organisations to those of the taxonomy; organisation ids are
    configuration. The policy version is the SHA-256 over the canonical contents of the
    loaded files, sorted by name, and those organisations.

    The files are read on every call; a :class:`Policy` (immutable) already built in this process
    from the same texts, profile and organisations is returned again instead of being parsed and
    checked anew.
    """
    texts = _texts(directory)
    key = (texts, profile, tuple(sorted((organisations or {}).items())))
    policy = _LOADED.get(key)
    if policy is None:
        policy = _load(directory, [_Source(name, text) for name, text in texts], organisations, profile)
        while len(_LOADED) >= _LOADED_KEPT:
            del _LOADED[next(iter(_LOADED))]
        _LOADED[key] = policy
    return policy


#: Policies built in this process, by their files' texts, profile and organisations (oldest first).
_LOADED: dict[tuple[Any, ...], Policy] = {}
_LOADED_KEPT = 8


def _load(directory: Path, sources: list[_Source], organisations: Mapping[str, str] | None,
          profile: str) -> Policy:
    by_kind: dict[str, list[_Source]] = {}
    for src in sources:
        by_kind.setdefault(_kind(src), []).append(src)
    if len(by_kind.get("taxonomy", [])) != 1:
        raise PolicyError(str(directory), None, "exactly one taxonomy file is required")
    baselines = _baselines(by_kind.get("baseline", []))
    baseline_src = _baseline_of(directory, baselines, profile)
    policy = _taxonomy(by_kind["taxonomy"][0], organisations or {})
    names = dict(policy.organisation_names)
    names.update(_names_override(baseline_src, policy))
    policy = replace(policy, profile=profile, organisation_names=frozen_mapping(names))
    if not by_kind.get("signals"):
        raise PolicyError(str(directory), None, "a signals file (kind = \"signals\") is required: "
                          "free text to another organisation is checked against it")
    policy = replace(policy, signals=_signals(by_kind["signals"], policy))
    seen: set[str] = set(GUARD_IDS)
    baseline_rules = _rules(baseline_src, policy, seen, involves=None)
    baseline = replace(policy, rules=baseline_rules)
    rules = list(baseline_rules)
    loaded = [by_kind["taxonomy"][0], baseline_src, *by_kind["signals"]]
    for src in by_kind.get("municipal", []):
        if profile not in _profiles_of(src, baselines):
            continue
        org = _meta(src).get("org")
        if not isinstance(org, str) or org not in policy.organisations:
            raise src.error(f"[meta] org must be a known organisation, got {org!r}", "org")
        own = _rules(src, policy, seen, involves=org)
        for rule in own:
            _check_restricts(src, rule, baseline)
        rules.extend(own)
        loaded.append(src)
    files = tuple(SourceFile(s.name, _meta(s)["kind"], _meta(s).get("org"), s.canonical())
                  for s in sorted(loaded, key=lambda s: s.name))
    return replace(policy, rules=tuple(rules), sources=files,
                   version=policy_version(files, organisations or {}))


def _baselines(sources: list[_Source]) -> dict[str, list[_Source]]:
    """Profile -> the baseline files that name it."""
    baselines: dict[str, list[_Source]] = {}
    for src in sources:
        baselines.setdefault(_profile_of(src), []).append(src)
    return baselines


def _baseline_of(directory: Path, baselines: Mapping[str, list[_Source]], profile: str
                 ) -> _Source:
    if profile not in baselines:
        known = ", ".join(sorted(baselines)) or "none"
        raise UnknownProfile(str(directory), None,
                             f"no baseline for policy profile {profile!r} (profiles here: {known})")
    if len(baselines[profile]) != 1:
        raise PolicyError(str(directory), None,
                          f"exactly one baseline file is required for profile {profile!r}")
    return baselines[profile][0]


def profiles(directory: Path) -> tuple[str, ...]:
    """The profiles that ``directory`` has a baseline for, the default first."""
    found = {_profile_of(src) for src in _sources(directory) if _kind(src) == "baseline"}
    return tuple(sorted(found, key=lambda p: (p != DEFAULT_PROFILE, p)))


def _sources(directory: Path) -> list[_Source]:
    return [_Source(name, text) for name, text in _texts(directory)]


def _texts(directory: Path) -> tuple[tuple[str, str], ...]:
    """(name, text) of every policy file of ``directory`` (not the ``*.cases.toml``), by name."""
    paths = sorted(p for p in Path(directory).glob("*.toml") if not p.name.endswith(CASES_SUFFIX))
    if not paths:
        raise PolicyError(str(directory), None, "no policy files (*.toml) found")
    texts = []
    for path in paths:
        try:
            texts.append((path.name, path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(path.name, None, f"cannot read: {exc}") from None
    return tuple(texts)


def _kind(src: _Source) -> str:
    kind = _meta(src).get("kind")
    if kind not in ("taxonomy", "baseline", "municipal", "signals"):
        raise src.error("[meta] kind must be taxonomy, baseline, municipal or signals", "kind")
    return str(kind)


def _profile_of(src: _Source) -> str:
    profile = _meta(src).get("profile", DEFAULT_PROFILE)
    if not isinstance(profile, str) or not _PROFILE.match(profile):
        raise src.error("[meta] profile must be a lower-case name such as today or "
                        "experiment-2015", "profile")
    return profile


def _profiles_of(src: _Source, baselines: Mapping[str, list[_Source]]) -> frozenset[str]:
    """The profiles a municipal file applies to: ``[meta] profiles``, or all."""
    value = _meta(src).get("profiles")
    if value is None:
        return frozenset(baselines)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise src.error("[meta] profiles must be a list of profile names", "profiles")
    for name in value:
        if name not in baselines:
            raise src.error(f"[meta] profiles: no baseline for profile {name!r}", "profiles")
    return frozenset(value)


def _names_override(src: _Source, policy: Policy) -> dict[str, str]:
    """A baseline may rename organisations for its profile (``[meta] organisation_names``),
    e.g. the experiment's City of Vantaa where today there is the wellbeing services county."""
    value = _meta(src).get("organisation_names", {})
    if not isinstance(value, dict) or not all(isinstance(v, str) and v.strip()
                                              for v in value.values()):
        raise src.error("[meta] organisation_names maps org id to a name", "organisation_names")
    for org in value:
        if org not in policy.organisations:
            raise src.error(f"[meta] organisation_names: unknown organisation {org!r}",
                            "organisation_names")
    return {org: name.strip() for org, name in value.items()}


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


def _keys(src: _Lines, data: dict[str, Any], allowed: frozenset[str] | set[str], where: str,
          *needles: str) -> None:
    for key in data:
        if key not in allowed:
            raise src.error(f"unknown key {key!r} in {where}", *needles, key)


def _text(src: _Lines, data: dict[str, Any], key: str, where: str, *needles: str,
          required: bool = True) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise src.error(f"{where}: {key} must be a non-empty string", *needles)
    return value.strip()


def _flag(src: _Lines, data: dict[str, Any], key: str, where: str, *needles: str) -> bool:
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
    kind_labels = _org_kinds(src)
    kinds = frozenset(kind_labels)
    categories = _categories(src, kinds)
    identifiers = _identifiers(src, categories)
    orgs, names = _organisations(src, kinds, extra_orgs)
    return Policy(version="", categories=frozen_mapping(categories),
                  identifiers=frozen_mapping(identifiers), org_kinds=kinds,
                  organisations=frozen_mapping(orgs), organisation_names=frozen_mapping(names),
                  org_kind_labels=frozen_mapping(kind_labels),
                  roles=frozenset(_table(src, src.data.get("roles"), "[roles]")),
                  purposes=frozen_mapping(_purposes(src, categories, identifiers)),
                  guards=frozen_mapping(_guards(src)), rules=(), sources=())


def _org_kinds(src: _Source) -> dict[str, str]:
    """Org kind -> its label (``label``, e.g. "hyvinvointialue"; the kind's name if none)."""
    labels = {}
    for name, spec, at in _entries(src, "org_kinds"):
        hdr = f"[org_kinds.{name}]"
        _keys(src, spec, {"description", "label"}, hdr, *at)
        _text(src, spec, "description", hdr, *at)
        labels[name] = _text(src, spec, "label", hdr, *at, required=False) or name
    return labels


def _entries(src: _Source, section: str) -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
    """The sub-tables of ``[section]`` with a header and the needles that locate each."""
    out: list[tuple[str, dict[str, Any], tuple[str, ...]]] = []
    for name, spec in _table(src, src.data.get(section), f"[{section}]").items():
        at = (f"[{section}", name)
        out.append((name, _table(src, spec, f"[{section}.{name}]", *at), at))
    return out


def _categories(src: _Source, kinds: frozenset[str]) -> dict[str, Category]:
    cats = {}
    for name, spec, at in _entries(src, "categories"):
        hdr = f"[categories.{name}]"
        _keys(src, spec, {"description", "sensitivity", "client_data", "special", "decision"},
              hdr, *at)
        if spec.get("sensitivity") not in SENSITIVITIES:
            raise src.error(f"{hdr}: sensitivity must be one of {', '.join(SENSITIVITIES)}",
                            *at, "sensitivity")
        client_data = _flag(src, spec, "client_data", hdr, *at) if "client_data" in spec else True
        decision = _decision_of(src, spec["decision"], kinds, hdr, *at) \
            if "decision" in spec else None
        cats[name] = Category(name, _text(src, spec, "description", hdr, *at),
                              spec["sensitivity"], client_data,
                              _flag(src, spec, "special", hdr, *at), decision)
    return cats


def _decision_of(src: _Source, spec: Any, kinds: frozenset[str], where: str,
                 *at: str) -> DecisionOf:
    """``decision = { issuer = <org kind>, kind = basic|supplementary|preventive|any,
    part = content|period }``: whose decision a category carries, of which kind."""
    spec = _table(src, spec, f"{where} decision", *at, "decision =")
    _keys(src, spec, {"issuer", "kind", "part"}, f"{where} decision", *at, "decision =")
    checks = (("issuer", sorted(kinds)), ("kind", DECISION_KINDS), ("part", DECISION_PARTS))
    for key, allowed in checks:
        if spec.get(key) not in allowed:
            raise src.error(f"{where}: decision {key} must be one of {', '.join(allowed)}",
                            *at, "decision =")
    return DecisionOf(spec["issuer"], spec["kind"], spec["part"])


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
                   ) -> tuple[dict[str, str], dict[str, str]]:
    """Org id -> kind, and org id -> display name (the id where the taxonomy gives none)."""
    orgs, names = {}, {}
    for org, spec, at in _entries(src, "organisations"):
        hdr = f"[organisations.{org}]"
        _keys(src, spec, {"kind", "name"}, hdr, *at)
        if spec.get("kind") not in kinds:
            raise src.error(f"{hdr}: unknown org kind {spec.get('kind')!r}", *at, "kind")
        orgs[org] = spec["kind"]
        names[org] = _text(src, spec, "name", hdr, *at, required=False) or org
    for org, kind in extra.items():
        if kind not in kinds:
            raise PolicyError(src.name, None,
                              f"configured organisation {org!r} has unknown kind {kind!r}")
        orgs[org] = kind
        names.setdefault(org, org)
    return orgs, names


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
    found: list[CategorySignals] = []
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


def _rule(source: _Source, spec: dict[str, Any], index: int, policy: Policy, seen: set[str],
          involves: str | None) -> Rule:
    offset = source.header_offset("[[rule]]", index)
    rid = spec.get("id")
    if not isinstance(rid, str) or not _RULE_ID.match(rid):
        raise PolicyError(source.name, source.line_of("[[rule]]", start=offset),
                          f"rule #{index + 1}: id must be lower-case letters, digits, '.' "
                          "and '-'")
    src: _Lines = _Located(source, offset)
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
    gdpr = _gdpr(src, spec["gdpr"], where, *at) if "gdpr" in spec else None
    secrecy = _secrecy(src, spec["secrecy"], where, *at) if "secrecy" in spec else None
    if gdpr is not None or secrecy is not None:
        for key in ("citation", "needs_check"):
            if key in spec:
                raise src.error(f"{where}: a rule with gdpr and secrecy bases takes its "
                                f"citation from them; remove {key} (needs_check goes on "
                                "the basis that needs checking)", *at, key)
    if effect in ("permit", "permit_with_consent") and relation != "same_org":
        _check_bases(src, where, effect, statutory, categories, policy, gdpr, secrecy, *at)
    if gdpr is not None and secrecy is not None:
        citation = f"Secrecy exception: {secrecy.citation} GDPR basis: {gdpr.citation}."
        needs_check = gdpr.needs_check or secrecy.needs_check
    else:
        citation = _text(src, spec, "citation", where, *at, required=involves is None)
        needs_check = _flag(src, spec, "needs_check", where, *at)
    if statutory and not citation:
        raise src.error(f"{where}: a statutory rule needs a citation", *at)
    _text(src, spec, "note", where, *at, required=False)
    return Rule(id=rid, effect=effect, sender=sender, recipient=recipient,
                categories=categories, purposes=purposes, relation=relation,
                requires_referral=requires_referral, statutory=statutory, citation=citation,
                needs_check=needs_check,
                reason=_text(src, spec, "reason", where, *at), source=src.name,
                line=src.line_of(*at) or 0, involves_org=involves, gdpr=gdpr, secrecy=secrecy)


# -- the two bases of a disclosure across organisations ---------------------------------------

def _gdpr(src: _Lines, spec: Any, where: str, *at: str) -> GdprBasis:
    """``gdpr = { articles = ["6(1)(e)", ...], law = "...", needs_check = bool }``."""
    spec = _table(src, spec, f"{where} gdpr", *at, "gdpr")
    _keys(src, spec, _GDPR_KEYS, f"{where} gdpr", *at, "gdpr")
    articles = spec.get("articles")
    if not isinstance(articles, list) or not articles or \
            not all(isinstance(a, str) for a in articles):
        raise src.error(f"{where}: gdpr articles must be a non-empty list such as "
                        '["6(1)(e)"]', *at, "gdpr")
    for article in articles:
        if article in ("6(1)(a)", "9(2)(a)"):
            raise src.error(f"{where}: GDPR art. {article} (consent) is not an authority's "
                            "basis; use 6(1)(c) or 6(1)(e) (with 9(2)(b) or 9(2)(h) for a "
                            "special category) and record the consent as the secrecy "
                            'exception: secrecy = { exception = "consent", ... }',
                            *at, "gdpr")
        if article not in GDPR_ARTICLES:
            raise src.error(f"{where}: unknown GDPR article {article!r} (use one of "
                            f"{', '.join(GDPR_ARTICLES)})", *at, "gdpr")
    if not {"6(1)(c)", "6(1)(e)"} & set(articles):
        raise src.error(f"{where}: gdpr articles need 6(1)(c) or 6(1)(e): an art. 9(2) "
                        "exception is in addition to an art. 6 basis, never instead of it",
                        *at, "gdpr")
    law = _text(src, spec, "law", f"{where} gdpr", *at, "gdpr")
    return GdprBasis(tuple(articles), law, _flag(src, spec, "needs_check", where, *at, "gdpr"))


def _secrecy(src: _Lines, spec: Any, where: str, *at: str) -> SecrecyException:
    """``secrecy = { exception = "statute" | "consent", citation = "...", needs_check }``."""
    spec = _table(src, spec, f"{where} secrecy", *at, "secrecy")
    _keys(src, spec, _SECRECY_KEYS, f"{where} secrecy", *at, "secrecy")
    exception = spec.get("exception")
    if exception not in SECRECY_EXCEPTIONS:
        raise src.error(f"{where}: secrecy exception must be statute or consent (julkisuuslaki "
                        f"621/1999 29 § 1 mom. allows no other), got {exception!r}",
                        *at, "secrecy")
    citation = _text(src, spec, "citation", f"{where} secrecy", *at, "secrecy")
    needs_check = _flag(src, spec, "needs_check", where, *at, "secrecy")
    if exception == "statute" and not _STATUTE_NUMBER.search(citation):
        raise src.error(f"{where}: a statute exception to secrecy cites the act by its number "
                        "(e.g. 1412/1997) and section", *at, "secrecy")
    if exception == "statute" and "§" not in citation and not needs_check:
        raise src.error(f"{where}: a statute exception to secrecy names its section (§), or "
                        "is marked needs_check until the section is found", *at, "secrecy")
    return SecrecyException(exception, citation, needs_check)


def _check_bases(src: _Lines, where: str, effect: str, statutory: bool,
                 categories: frozenset[str] | None, policy: Policy, gdpr: GdprBasis | None,
                 secrecy: SecrecyException | None, *at: str) -> None:
    """A permit that can apply across organisations discloses secret client data to another
    controller: it needs a GDPR basis and an exception to secrecy that fits its effect."""
    missing = [what for what, value in (("a GDPR basis (gdpr)", gdpr),
                                        ("a secrecy exception (secrecy)", secrecy))
               if value is None]
    if missing:
        raise src.error(f"{where}: a permit that can apply across organisations needs a GDPR "
                        "basis and an exception to secrecy (julkisuuslaki 621/1999 29 § 1 mom.: "
                        f"a statute or the client's consent); missing {' and '.join(missing)}",
                        *at)
    assert gdpr is not None and secrecy is not None
    if effect == "permit_with_consent" and secrecy.exception != "consent":
        raise src.error(f"{where}: a permit_with_consent rule rests on the client's consent: "
                        'its secrecy exception must be "consent"', *at, "secrecy")
    if effect == "permit" and secrecy.exception != "statute":
        raise src.error(f"{where}: a plain permit checks no consent, so its secrecy exception "
                        'must be "statute"; use effect permit_with_consent for a consent',
                        *at, "secrecy")
    covered = categories if categories is not None else frozenset(policy.categories)
    special = sorted(c for c in covered if c in policy.categories and policy.categories[c].special)
    if special and not GDPR_SPECIAL_ARTICLES & set(gdpr.articles):
        raise src.error(f"{where}: {', '.join(special)} is a special category (GDPR art. 9(1)); "
                        "gdpr articles need 9(2)(b) or 9(2)(h) as well", *at, "gdpr")


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

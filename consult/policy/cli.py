"""What ``consult policy test`` and ``consult policy explain`` do, as functions that write
to a text stream and return the process exit code (the command-line wiring lives in
``consult/cli.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from consult.model.identifiers import ClientRef
from consult.policy.cases import run_cases
from consult.policy.engine import PolicyEngine
from consult.policy.loader import PolicyError, load_policy, profiles
from consult.policy.model import Consent, ItemRequest, Party
from consult.policy.rules import DEFAULT_PROFILE

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_EXAMPLE_CLIENT = ClientRef("example-client")


def run_policy_tests(policy_dir: Path, out: TextIO, profile: str | None = None) -> int:
    """Load the policy in ``policy_dir`` and run every ``*.cases.toml`` beside it, for every
    profile the directory has a baseline for (or only ``profile``).

    Prints one line per case and a summary per profile. Returns 0 when every case passes and
    every rule (and built-in guard) of every profile is decided by at least one case; 1 when
    a case fails or a rule is not exercised (each printed by name); 2 when the policy or a
    cases file cannot be loaded.
    """
    try:
        names = (profile,) if profile is not None else profiles(policy_dir)
    except PolicyError as exc:
        print(f"error: {exc}", file=out)
        return EXIT_USAGE
    code = EXIT_OK
    for name in names:
        result = _run_profile(policy_dir, name, out)
        if result == EXIT_USAGE:
            return EXIT_USAGE
        code = max(code, result)
    return code


def _run_profile(policy_dir: Path, profile: str, out: TextIO) -> int:
    print(f"profile {profile}:", file=out)
    try:
        policy = load_policy(policy_dir, profile=profile)
        report = run_cases(policy_dir, policy)
    except PolicyError as exc:
        print(f"error: {exc}", file=out)
        return EXIT_USAGE
    current = None
    for result in report.results:
        if result.file != current:
            current = result.file
            print(f"{current}:", file=out)
        mark = "ok  " if result.failure is None else "FAIL"
        print(f"  {mark} {result.case.name}", file=out)
        if result.failure is not None:
            print(f"       {result.case.file}:{result.case.line}: {result.failure}", file=out)
    for rule in report.unexercised:
        print(f"not exercised by any case: {rule}", file=out)
    failed = sum(1 for r in report.results if r.failure is not None)
    print(f"profile {profile}: {len(report.results) - failed} passed, {failed} failed, "
          f"{len(report.unexercised)} rules not exercised; policy version {policy.version}",
          file=out)
    return EXIT_OK if report.ok else EXIT_FAILED


def explain(policy_dir: Path, sender_org: str, sender_role: str, recipient_org: str,
            recipient_role: str, category: str, purpose: str, with_consent: bool,
            out: TextIO, *, now: datetime | None = None,
            profile: str = DEFAULT_PROFILE) -> int:
    """Print why one item from sender to recipient gets the decision it gets under
    ``profile``: every rule considered, whether it matched and why, and the final decision
    with its citation and, for a disclosure across organisations, both of its bases (the
    GDPR basis and the exception to secrecy).

    The item is about a linked example client. With ``with_consent`` the client has an
    active consent that covers exactly this item (category, recipient organisation and
    purpose). ``category`` may also be an identifier pseudo-category such as
    ``identifier.iban``: then the trace is for that identifier in free text, where no
    consent applies. Returns 0 after printing, 2 if the policy cannot be loaded or a name
    is not in the taxonomy.
    """
    try:
        policy = load_policy(policy_dir, profile=profile)
    except PolicyError as exc:
        print(f"error: {exc}", file=out)
        return EXIT_USAGE
    unknown = [f"{what} {name!r}" for what, name, known in (
        ("organisation", sender_org, policy.organisations),
        ("organisation", recipient_org, policy.organisations),
        ("role", sender_role, policy.roles), ("role", recipient_role, policy.roles),
        ("category", category, {**policy.categories, **policy.identifiers}),
        ("purpose", purpose, policy.purposes),
    ) if name not in known]
    if unknown:
        print("error: unknown " + ", ".join(unknown), file=out)
        return EXIT_USAGE
    now = now or datetime.now(UTC)
    consent = None
    if with_consent and category in policy.identifiers:
        print("note: no consent covers an identifier in text; --with-consent is ignored",
              file=out)
    elif with_consent:
        consent = Consent("example-consent", 1, _EXAMPLE_CLIENT, "active",
                          frozenset({category}), frozenset({recipient_org}), frozenset(),
                          frozenset(), frozenset({purpose}), now - timedelta(days=1), None,
                          disclosing_org=sender_org)
    request = ItemRequest(Party(sender_org, sender_role), Party(recipient_org, recipient_role),
                          category, purpose, _EXAMPLE_CLIENT, consent, (), None, now)
    for line in PolicyEngine(policy).explain(request):
        print(line, file=out)
    return EXIT_OK

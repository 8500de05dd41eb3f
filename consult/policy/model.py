"""Value types the policy engine decides over: parties, consents, prohibitions, referrals,
item requests and the frozen decision that names its rule, citation and basis."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from consult.model.identifiers import ClientRef

#: Final effects a decision can carry. ``permit_with_consent`` is a rule effect only: it
#: resolves to ``permit`` or ``deny`` before a decision is returned.
FINAL_EFFECTS: Final = frozenset({"permit", "deny", "redact"})
RULE_EFFECTS: Final = frozenset({"permit", "permit_with_consent", "redact", "deny"})
#: The two conditions of sosiaalihuoltolaki 1301/2014 § 35(2) under which Kela staff may
#: contact social services without the person's consent.
REFERRAL_CONDITIONS: Final = frozenset({"unable_to_look_after_self", "child_interest"})
#: Kinds of identifier found in free text (``consult.policy.scan``) that the policy decides
#: per reader, as the pseudo-categories ``identifier.<kind>``. The identity code is not one
#: of them: a HETU is always replaced by the client link (category ``identity.hetu``).
IDENTIFIER_KINDS: Final = frozenset({"iban", "phone", "email"})
CLIENT_LINK_KIND: Final = "hetu"


@dataclass(frozen=True, slots=True)
class Party:
    """One end of a disclosure: an organisation id, a role and optionally a named user."""

    org: str
    role: str
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class Consent:
    """One version of a client's consent, as recorded (after FHIR Consent / ISO/IEC TS 27560).

    ``disclosing_org`` is the organisation whose disclosure the consent waives secrecy for
    (julkisuuslaki 621/1999 29 § 1 mom. 2 k.); a consent recorded before consents named it may
    have None, and then covers no disclosure. ``recipient_roles`` and ``recipient_users``
    empty mean any role / anyone in the recipient organisations. ``valid_until`` None means
    open-ended (only consents recorded before validity was bounded). Datetimes must be
    timezone-aware, as must the ``now`` of the request they are compared with.
    """

    id: str
    version: int
    client_ref: ClientRef
    status: str
    categories: frozenset[str]
    recipient_orgs: frozenset[str]
    recipient_roles: frozenset[str]
    recipient_users: frozenset[str]
    purposes: frozenset[str]
    valid_from: datetime
    valid_until: datetime | None
    disclosing_org: str | None = None

    @property
    def tag(self) -> str:
        """The consent tag as written into a disclosure record: ``<id>@<version>``."""
        return f"{self.id}@{self.version}"


@dataclass(frozen=True, slots=True)
class Prohibition:
    """A client's disclosure prohibition (cf. Kanta *luovutuskielto*).

    ``category`` None forbids every category; ``org`` None forbids disclosure to every
    other organisation. A prohibition concerns disclosure across organisations; it does
    not govern use within the organisation that already holds the data.
    """

    client_ref: ClientRef
    category: str | None = None
    org: str | None = None


@dataclass(frozen=True, slots=True)
class Referral:
    """The recorded ground for a § 35(2) referral without consent (sosiaalihuoltolaki
    1301/2014): which condition holds, the advisor's justification, and why the person's
    consent could not be obtained (the first condition of the subsection). The engine counts a
    referral as recorded only if the condition is one of ``REFERRAL_CONDITIONS`` and neither
    text is blank."""

    condition: str
    justification: str = field(repr=False)
    why_no_consent: str = field(default="", repr=False)

    @property
    def is_recorded(self) -> bool:
        return (self.condition in REFERRAL_CONDITIONS and bool(self.justification.strip())
                and bool(self.why_no_consent.strip()))


@dataclass(frozen=True, slots=True)
class ItemRequest:
    """The question put to the engine: may this one data item go from sender to recipient?

    ``prohibitions`` are the client's prohibitions in force (the engine still checks that
    each concerns this client). ``now`` is the decision time, timezone-aware.
    """

    sender: Party
    recipient: Party
    category: str
    purpose: str
    client_ref: ClientRef | None
    consent: Consent | None
    prohibitions: tuple[Prohibition, ...]
    referral: Referral | None
    now: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    """The final answer for one item (or one identifier in free text) to one recipient.

    ``effect`` is ``permit``, ``deny`` or ``redact``; for an identifier in free text only
    ``permit`` or ``redact`` (the span is replaced by a marker for that reader). ``basis`` is one of
    ``statute:<rule id>`` (a disclosure across organisations whose exception to secrecy is a
    statute), ``consent:<id>@<version>`` (one whose exception is the client's consent),
    ``internal:<rule id>`` (use within one organisation, no disclosure to another
    controller), ``rule:<rule id>`` (an explicit deny or redact rule, or a built-in guard) or
    ``default-deny``. There is no other basis: a disclosure rests on a statute or a consent. ``reason`` is safe to
    show to the sender and the recipient: it never contains personal data.
    ``consent_id``/``consent_version`` name the consent the deciding rule evaluated (also
    when it was found not to cover the item, so that the refusal can be audited).
    """

    effect: str
    rule_id: str
    citation: str
    policy_version: str
    basis: str
    reason: str
    consent_id: str | None = None
    consent_version: int | None = None
    flags: frozenset[str] = frozenset()

    @property
    def permitted(self) -> bool:
        return self.effect == "permit"

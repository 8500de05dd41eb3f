"""Whether a recorded consent covers one data item: same client, active, in its validity
period, given for this disclosing organisation, and the category, recipient and purpose all in
its scope."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from consult.model.identifiers import ClientRef
from consult.policy.model import Consent

CONSENT_FAILURE_TEXT: Final = {
    "consent_missing": "no consent was given for this item",
    "consent_other_client": "the consent given belongs to another client",
    "consent_withdrawn": "the consent has been withdrawn",
    "consent_suspended": "the consent is suspended",
    "consent_expired": "the consent has expired",
    "consent_not_active": "the consent is not active",
    "consent_not_yet_valid": "the consent is not yet valid",
    "consent_category_out_of_scope": "the consent does not cover this category",
    "consent_org_out_of_scope": "the consent does not cover the recipient organisation",
    "consent_discloser_out_of_scope": "the consent does not cover disclosure by the sender's organisation",
    "consent_role_out_of_scope": "the consent does not cover the recipient's role",
    "consent_user_out_of_scope": "the consent does not cover this recipient",
    "consent_purpose_out_of_scope": "the consent does not cover this purpose",
}


def consent_failure(consent: Consent | None, client_ref: ClientRef | None, category: str,
                    recipient_org: str, recipient_role: str, recipient_user: str | None,
                    purpose: str, now: datetime, sender_org: str) -> str | None:
    """Why ``consent`` does not cover this item (a flag name), or None if it does."""
    if consent is None:
        return "consent_missing"
    if client_ref is None or consent.client_ref != client_ref:
        return "consent_other_client"
    if consent.status != "active":
        if consent.status in ("withdrawn", "suspended", "expired"):
            return "consent_" + consent.status
        return "consent_not_active"
    if now < consent.valid_from:
        return "consent_not_yet_valid"
    if consent.valid_until is not None and now >= consent.valid_until:
        return "consent_expired"
    if category not in consent.categories:
        return "consent_category_out_of_scope"
    if consent.disclosing_org != sender_org:
        return "consent_discloser_out_of_scope"
    if recipient_org not in consent.recipient_orgs:
        return "consent_org_out_of_scope"
    if consent.recipient_roles and recipient_role not in consent.recipient_roles:
        return "consent_role_out_of_scope"
    if consent.recipient_users and recipient_user not in consent.recipient_users:
        return "consent_user_out_of_scope"
    if purpose not in consent.purposes:
        return "consent_purpose_out_of_scope"
    return None

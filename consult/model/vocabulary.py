"""The closed vocabularies of the public API (SPEC §5, §6): names clients and partners rely on."""

from __future__ import annotations

from typing import Final

ROLES: Final = frozenset({"advisor", "expert", "social_worker", "privacy_officer", "admin"})

URGENCIES: Final = ("immediate", "today", "normal")

STATUSES: Final = ("open", "claimed", "closed")

OUTCOMES: Final = frozenset({"advice_given", "data_disclosed", "referred", "declined"})

PURPOSES: Final = frozenset(
    {
        "general",
        "tt.application_intake",
        "tt.income_calculation",
        "tt.service_guidance",
        "tt.forwarding",
        "tt.social_services_statement",
        "tt.supplementary_assistance",
        "tt.preventive_assistance",
        "sh.referral",
        "sh.multidisciplinary",
        "ls.notification",
    }
)

#: Statutory contacts, each routed at once to an intake pool of social workers in the receiving
#: wellbeing services county (its name is configuration): a sosiaalihuoltolaki 1301/2014 35 §
#: contact to the social-work intake, a lastensuojelulaki 417/2007 25 § notification to the
#: child-welfare intake.
REFERRAL_PURPOSE: Final = "sh.referral"
NOTIFICATION_PURPOSE: Final = "ls.notification"
INTAKE_PURPOSES: Final = frozenset({REFERRAL_PURPOSE, NOTIFICATION_PURPOSE})
INTAKE_ROLE: Final = "social_worker"

# SPEC §6: category names are part of the API. The decision categories carry their issuer
# and kind: decision.basic is Kela's, the others the wellbeing services county's.
CATEGORIES: Final = frozenset(
    {
        "application.status",
        "application.content",
        "decision.period",
        "decision.content",
        "decision.basic",
        "decision.supplementary",
        "decision.preventive",
        "income.kela_benefit",
        "income.other",
        "population_register",
        "application.attachment",
        "social_work.assessment",
        "social_work.statement",
        "service_need.referral",
        "health",
        "debt",
        "housing.risk",
        "child_welfare",
        "identity.hetu",
    }
)

# SPEC C1: "from a configurable list"; this is the default list.
DEFAULT_TOPICS: Final = (
    "application_intake",
    "attachments",
    "primary_benefits",
    "urgent_assistance",
    "other",
)

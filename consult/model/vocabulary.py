"""The closed vocabularies of the public API (docs/capabilities.md: public API, data categories):
names clients and partners rely on.

Categories, purposes and roles have one home, the policy taxonomy (``policies/taxonomy.toml``):
`read_taxonomy` reads their names from it, and the constants below are those of the taxonomy
shipped with Konsulta. A running service answers with the taxonomy of its own policy directory
(``CONSULT_POLICY_DIR``): the OpenAPI enums, ``/api/v1/config`` and request validation read the
loaded policy (consult/http/vocabulary.py), these constants only where no policy is at hand.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

from consult.bundled import POLICIES, bundled_dir


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The names a taxonomy declares: data categories, purposes and roles (policies/taxonomy.toml)."""

    categories: frozenset[str]
    purposes: frozenset[str]
    roles: frozenset[str]

    @property
    def client_categories(self) -> frozenset[str]:
        """The categories a consent or prohibition can name: all but an identity code found in
        free text, which is always replaced by the client link."""
        return self.categories - {"identity.hetu"}

    @property
    def client_purposes(self) -> frozenset[str]:
        """The purposes a consent can name: all but ``general``, which carries no client data."""
        return self.purposes - {"general"}


def default_taxonomy() -> Path:
    """The taxonomy shipped with the code (``policies/taxonomy.toml``, packaged or checked out)."""
    return bundled_dir(POLICIES) / "taxonomy.toml"


def read_taxonomy(path: Path) -> Vocabulary:
    """The names in the taxonomy at ``path``. Only the names: the policy loader
    (consult/policy/loader.py) validates the file and reads the rest."""
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return Vocabulary(categories=frozenset(data.get("categories", {})),
                      purposes=frozenset(data.get("purposes", {})),
                      roles=frozenset(data.get("roles", {})))


DEFAULT: Final = read_taxonomy(default_taxonomy())
"""The vocabulary of the shipped taxonomy."""
CATEGORIES: Final = DEFAULT.categories
PURPOSES: Final = DEFAULT.purposes
ROLES: Final = DEFAULT.roles

URGENCIES: Final = ("immediate", "today", "normal")

Status = Literal["open", "claimed", "closed"]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)

OUTCOMES: Final = frozenset({"advice_given", "data_disclosed", "referred", "declined"})

#: Statutory contacts, each routed at once to an intake pool of social workers in the receiving
#: wellbeing services county (its name is configuration): a sosiaalihuoltolaki 1301/2014 35 §
#: contact to the social-work intake, a lastensuojelulaki 417/2007 25 § notification to the
#: child-welfare intake.
REFERRAL_PURPOSE: Final = "sh.referral"
NOTIFICATION_PURPOSE: Final = "ls.notification"
INTAKE_PURPOSES: Final = frozenset({REFERRAL_PURPOSE, NOTIFICATION_PURPOSE})
INTAKE_ROLE: Final = "social_worker"

# Topics come from a configurable list (CONSULT_TOPICS; docs/capabilities.md C1); this is the default list.
DEFAULT_TOPICS: Final = (
    "application_intake",
    "attachments",
    "primary_benefits",
    "urgent_assistance",
    "other",
)

"""Data-minimisation policy: the pure decision engine over the rules in ``policies/`` and
the free-text identifier scanner. No I/O beyond loading the policy files at start-up."""

from consult.policy.engine import PolicyEngine
from consult.policy.loader import PolicyError, load_policy
from consult.policy.model import (
    Consent,
    Decision,
    ItemRequest,
    Party,
    Prohibition,
    Referral,
)
from consult.policy.rules import Policy

__all__ = [
    "Consent", "Decision", "ItemRequest", "Party", "Policy", "PolicyEngine", "PolicyError",
    "Prohibition", "Referral", "load_policy",
]

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Change-governance policies: loading, validation, contradiction checks and rule evaluation."""

from __future__ import annotations

from .evaluate import Assessment, assess, matches
from .loader import DEFAULT_POLICY_PATH, Policy, PolicyError, canonical_digest, load_policy
from .schema import CHANGE_TYPES, EXEMPTABLE_CHECKS, RISK_LEVELS, ROUTES

__all__ = [
    "CHANGE_TYPES",
    "DEFAULT_POLICY_PATH",
    "EXEMPTABLE_CHECKS",
    "RISK_LEVELS",
    "ROUTES",
    "Assessment",
    "Policy",
    "PolicyError",
    "assess",
    "canonical_digest",
    "load_policy",
    "matches",
]

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release record: one record per release attempt, written by every stage of the release, read by the
gate, the permit checks, metrics and reviews (docs/release-record.md)."""

from __future__ import annotations

from .evidence import (
    CALLER_CLAIMS,
    CHECKED_STAGES,
    caller_claims,
    classification_from_record,
    refuse_claims,
    risk_evidence,
    signature_shortfall,
    verification_evidence,
)
from .model import FINAL_OUTCOMES, OUTCOMES, STAGES, ReleaseRecordError, default_release_id, manifest_facts
from .store import ReleaseRecordStore

__all__ = [
    "CALLER_CLAIMS",
    "CHECKED_STAGES",
    "FINAL_OUTCOMES",
    "OUTCOMES",
    "STAGES",
    "ReleaseRecordError",
    "ReleaseRecordStore",
    "caller_claims",
    "classification_from_record",
    "default_release_id",
    "manifest_facts",
    "refuse_claims",
    "risk_evidence",
    "signature_shortfall",
    "verification_evidence",
]

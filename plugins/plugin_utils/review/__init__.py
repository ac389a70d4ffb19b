# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reviews as records: the feedback and follow-up actions of a release, kept beside its release record
and read by the post-implementation review; and the runbook rule (docs/metrics.md)."""

from __future__ import annotations

from .model import (
    ACTION_STATES,
    ActionRequest,
    Feedback,
    ReviewError,
    ReviewPlan,
    action_request,
    feedback_entry,
    is_overdue,
    with_overdue,
)
from .runbook import VERDICTS, RunbookCheck, check_runbook
from .store import ReviewStore

__all__ = [
    "ACTION_STATES",
    "VERDICTS",
    "ActionRequest",
    "Feedback",
    "ReviewError",
    "ReviewPlan",
    "ReviewStore",
    "RunbookCheck",
    "action_request",
    "check_runbook",
    "feedback_entry",
    "is_overdue",
    "with_overdue",
]

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors raised by the ITSM backends."""

from __future__ import annotations

from ansible_collections.relops.release.plugins.plugin_utils.ledger.errors import LedgerError


class ITSMError(LedgerError):
    """An ITSM problem worded for the person running the play: the value and the fix.

    It derives from LedgerError so every relops.release action reports it the
    same way, as a failed task carrying this message.
    """


class ITSMNotFound(ITSMError):
    """A change, CI or other record that the task names does not exist."""


class ITSMAuthError(ITSMError):
    """The instance refused the credentials."""


class ITSMUnreachable(ITSMError):
    """The instance could not be reached within the retry budget."""


class ITSMAmbiguousWrite(ITSMError):
    """A create request failed in a way that leaves unknown whether the instance applied it.

    Callers look the record up again by its correlation id or identity before retrying.
    """

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors raised by the release ledger."""

from __future__ import annotations


class LedgerError(Exception):
    """A ledger problem, worded for the person running the play: the value and the fix."""


class LedgerURLError(LedgerError):
    """The ledger URL cannot be understood."""


class LedgerConnectionError(LedgerError):
    """The ledger's database cannot be reached or opened."""


class LedgerSchemaError(LedgerError):
    """The database is not a ledger, or its schema is newer than this code."""

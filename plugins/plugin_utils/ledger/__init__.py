# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release ledger: runs, deployments, gate decisions and locks, in SQLite or PostgreSQL."""

from __future__ import annotations

from .errors import LedgerConnectionError, LedgerError, LedgerSchemaError, LedgerURLError
from .store import (
    Ledger,
    LockAttempt,
    LockState,
    decision_record,
    ensure_holder,
    ensure_releasable,
    open_existing_ledger,
    open_ledger,
)
from .url import LEDGER_URL_ENV, LEDGER_URL_VAR, LedgerURL, parse_ledger_url, resolve_ledger_url

__all__ = [
    "LEDGER_URL_ENV",
    "LEDGER_URL_VAR",
    "Ledger",
    "LedgerConnectionError",
    "LedgerError",
    "LedgerSchemaError",
    "LedgerURL",
    "LedgerURLError",
    "LockAttempt",
    "LockState",
    "decision_record",
    "ensure_holder",
    "ensure_releasable",
    "open_existing_ledger",
    "open_ledger",
    "parse_ledger_url",
    "resolve_ledger_url",
]

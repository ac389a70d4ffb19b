# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side use of a secrets manager (OpenBao, or HashiCorp Vault: the same HTTP API).

openbao: the HTTP client (token auth, errors that name the secret path);
transit: signing with keys held in the transit engine; dbcreds: short-lived
database logins from the database secrets engine, revoked when the run ends.
"""

from __future__ import annotations

from ansible_collections.relops.release.plugins.plugin_utils.ledger.errors import LedgerError


class SecretsError(LedgerError):
    """A secrets manager problem worded for the person running the play: the path and the fix.

    It derives from LedgerError so every relops.release action reports it as a failed task.
    """


class SecretsUnavailable(SecretsError):
    """The secrets manager is sealed, down or unreachable: nothing was read, nothing may change."""

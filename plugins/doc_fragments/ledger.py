# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  ledger_url:
    description:
      - Where the release ledger lives.
      - C(sqlite:///path/to/ledger.db) is the embedded default, a file on the controller in WAL mode.
        C(sqlite:///~/ledger.db) is relative to the controller user's home.
      - C(postgresql://user@host:port/dbname) is the shared ledger for teams and AWX, where every job
        runs in a fresh container. The password comes from the URL, E(PGPASSWORD) or C(~/.pgpass);
        it is never shown in messages. Needs C(psycopg) (version 3) on the controller.
      - When not set, the C(relops_ledger_url) variable is used, then the E(RELOPS_LEDGER_URL)
        environment variable, then C(sqlite:///$XDG_STATE_HOME/relops/ledger.db)
        (C(~/.local/state/relops/ledger.db) when E(XDG_STATE_HOME) is unset).
      - The ledger's schema is created on first use and upgraded when an older ledger is opened;
        a ledger newer than this collection, or a database that holds something else, is refused.
      - Set it once for a play with O(ledger_url) under
        C(module_defaults) for C(group/relops.release.ledger).
    type: str
"""

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  db_url:
    description:
      - The database to migrate, as seen from the host the task runs on.
      - C(sqlite:///path/to/app.db) for SQLite (the file is created when missing).
      - C(postgresql://user@host:port/dbname) for PostgreSQL; needs C(psycopg) (version 3) where the
        task runs. Put the password in E(PGPASSWORD) or C(~/.pgpass) rather than in the URL; a password in
        the URL is masked in messages and in the task's
        C(invocation.module_args) (shown at C(-vvv)).
    type: str
    required: true
  db_password:
    description:
      - PostgreSQL only. The password of the user in O(db_url), kept out of the URL; never logged.
      - The C(relops.release.schema_migration) role passes the short-lived login that
        M(relops.release.db_credentials) issued here.
    type: str
  migrations_dir:
    description:
      - Folder holding the migration scripts, named as Flyway names them
        (C(V<version>__<description>.sql), C(U<version>__<description>.sql), C(R__<description>.sql)).
      - Usually the C(migrations) folder of the unpacked release package on the host the task runs on.
    type: path
    required: true
  table:
    description:
      - Name of the history table. Keep Flyway's default to share history with Flyway.
    type: str
    default: flyway_schema_history
  schema:
    description:
      - PostgreSQL only. Schema holding the history table and the default for the scripts' objects
        (C(search_path)); created when missing. The connection's default schema when not set.
    type: str
  placeholders:
    description:
      - Values for C(${name}) placeholders in the scripts. A placeholder without a value fails the task
        naming it.
    type: dict
    default: {}
  out_of_order:
    description:
      - Apply a versioned script older than the current version that was never applied (a hotfix merged
        late). When false such a script fails the task, naming it.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for another process migrating the same database (and history table) before failing.
    type: int
    default: 300
  encoding:
    description:
      - Character encoding the scripts are written in, as Flyway's C(encoding) setting (C(UTF-8), C(ISO-8859-1),
        C(UTF-16), C(UTF-16LE), C(UTF-16BE), C(US-ASCII), or any other codec name Python knows).
      - A leading byte-order mark is dropped before the script runs and is not part of its checksum, as in Flyway.
        The checksum is Flyway's (CRC32 of the decoded lines as UTF-8), so changing the encoding of an applied
        script without changing its text keeps its checksum.
      - A file that is not valid in this encoding fails the task naming the file, the line and the column.
    type: str
    default: UTF-8
"""

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: db_migrate_record
short_description: Record in the release ledger the schema version a release's migrations reached
version_added: 0.1.0
description:
  - Stores, beside the release's deployment records, which database a release migrated, the phase, the schema
    version before and after, and the scripts applied.
  - Once a release's phase is recorded for a database, recording it again with no scripts applied (a later
    batch under C(serial), a rerun) changes nothing, so a role that runs once per batch records once per
    release. A run that applied scripts adds its own record.
  - Runs on the controller; the database URL is stored with any password masked.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  service:
    description: The service the release belongs to.
    type: str
    required: true
  environment:
    description: The environment released to.
    type: str
    required: true
  release:
    description: The release (application version) whose migrations ran.
    type: str
    required: true
  phase:
    description: Which migrations ran; V(undo) for an undo made by a rollback.
    type: str
    choices: [all, expand, contract, undo]
    default: all
  db_url:
    description: The migrated database, as given to M(relops.release.db_migrate).
    type: str
    required: true
  version_before:
    description: Schema version before the migrations (unset for an empty history).
    type: str
  version_after:
    description: Schema version after the migrations.
    type: str
  applied:
    description: Scripts applied.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
  - relops.release.ledger
attributes:
  check_mode:
    support: full
    details: Reports whether a record would be added, without writing to the ledger.
  diff_mode:
    support: full
    details: Shows the recorded schema version before and after.
seealso:
  - module: relops.release.db_migrate
"""

EXAMPLES = r"""
- name: Migrate
  relops.release.db_migrate:
    db_url: postgresql://app@db.example.com/orders
    migrations_dir: /opt/orders/releases/2.4.0/migrations
  register: migration
  run_once: true

- name: Record the schema version beside the deployment
  relops.release.db_migrate_record:
    service: orders
    environment: production
    release: 2.4.0
    db_url: postgresql://app@db.example.com/orders
    version_before: "{{ migration.version_before }}"
    version_after: "{{ migration.version_after }}"
    applied: "{{ migration.applied | map(attribute='script') | list }}"
  run_once: true
"""

RETURN = r"""
record:
  description: The ledger record (null in check mode when a new one would be added).
  returned: always
  type: dict
  sample: {"id": 3, "service": "orders", "environment": "production", "release": "2.4.0", "phase": "all",
           "database_url": "postgresql://app@db.example.com/orders", "version_before": "7", "version_after": "9",
           "applied": ["V8__totals.sql", "V9__index.sql"], "recorded_at": "2026-11-26T09:30:00.000000Z"}
"""

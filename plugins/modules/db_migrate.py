#!/usr/bin/python
# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: db_migrate
short_description: Apply, undo, validate or baseline Flyway-style SQL migrations on SQLite or PostgreSQL
version_added: 0.1.0
description:
  - Applies the versioned (C(V)) scripts of O(migrations_dir) that the database has not seen, in Flyway's version
    order, then the repeatable (C(R)) scripts whose checksum changed. Each script runs in its own transaction and
    is recorded in a history table with Flyway's layout and checksums, so Flyway and this module can take turns on
    one database.
  - A script whose first lines hold C(-- relops:transactional=false) runs outside a transaction (for example
    C(CREATE INDEX CONCURRENTLY)); write such scripts so they can be re-run.
  - A script whose first lines hold C(-- relops:phase=contract) belongs to the contract phase. With
    O(phase=expand) it and every later script are held back until a run with O(phase=contract).
  - Only one process migrates a database at a time. PostgreSQL uses a session advisory lock, SQLite an
    C(flock) on C(<file>.migrate.lock); both disappear when the holding process dies, so a killed run never
    leaves the database locked. A second run waits up to O(lock_timeout) seconds, then finds nothing to do.
  - A failing script is rolled back, recorded in the history with C(success=false), and the task fails naming the
    script, the line and the database's message. Scripts before it stay applied. Fix the script and run again.
  - Runs where the database is reachable; delegate it to one host and run it once per release. The module
    knows nothing of batches; the C(relops.release.schema_migration) role runs a release's migrations exactly once
    even under C(serial).
author:
  - relops.release maintainers (@relops)
options:
  state:
    description:
      - V(migrated) applies pending scripts (up to O(target) when set).
      - V(undone) applies the C(U) scripts of every version above O(target), newest first. When a version has
        no undo script the task fails naming it, before anything is undone.
      - V(validated) only checks that applied scripts are unchanged (checksums), that no applied version lost
        its script, and that no unapplied script is older than the current version (unless O(out_of_order)).
      - V(baselined) records O(baseline_version) as the starting point of a database that has no history yet;
        scripts up to that version are then never applied.
      - V(compatible) makes the schema fit an application version that supports the schema versions in
        O(supported) (used when rolling an application back). Nothing changes when the current version is in
        range. Above the range, the C(U) scripts of every version above O(supported.max) are applied, newest
        first. When an undo script is missing, or the range lies above the current version, the task fails with
        a message naming the versions, before anything changes.
    type: str
    choices: [migrated, undone, validated, baselined, compatible]
    default: migrated
  target:
    description:
      - With O(state=migrated), the highest version to apply (V(latest) or unset for all).
      - With O(state=undone), the version to undo down to (required); it stays applied.
    type: str
  phase:
    description:
      - V(all) applies every pending script; V(expand) holds back the first contract-phase script and everything
        after it; V(contract) applies what the expand phase held back.
    type: str
    choices: [all, expand, contract]
    default: all
  baseline_version:
    description:
      - With O(state=baselined), the version the existing schema corresponds to.
    type: str
    default: "1"
  supported:
    description:
      - With O(state=compatible), the schema versions the application supports, as its release manifest
        declares them (C(migrations.schema_versions) in C(manifest.json)).
    type: dict
    suboptions:
      min:
        description: Oldest schema version the application works with; no lower bound when unset.
        type: str
      max:
        description: Newest schema version the application works with; no upper bound when unset.
        type: str
  app_version:
    description:
      - With O(state=compatible), the application version being rolled back to, named in messages.
    type: str
  installed_by:
    description:
      - Who the history records as having applied the scripts. The database user when unset.
    type: str
extends_documentation_fragment:
  - relops.release.migrations
  - ansible.builtin.action_common_attributes
  - relops.release.permit
attributes:
  check_mode:
    support: full
    details: Lists the scripts that would run, each with its SQL (placeholders replaced), without locking or
      writing.
  diff_mode:
    support: full
    details: Shows the schema version before and after.
  platform:
    platforms: posix
requirements:
  - psycopg (version 3) for PostgreSQL databases, on the host the task runs on
notes:
  - Checksums are Flyway's (CRC32 of the script's lines without line endings), stored as signed 32-bit integers;
    see C(docs/migrations.md) in the collection.
seealso:
  - module: relops.release.db_migrate_info
"""

EXAMPLES = r"""
- name: Apply the release's migrations, once, from the first host
  relops.release.db_migrate:
    db_url: postgresql://app@db.example.com:5432/orders
    migrations_dir: /opt/orders/releases/2.4.0/migrations
    placeholders:
      app_role: orders_app
  run_once: true
  delegate_to: "{{ groups['app'][0] }}"

- name: Show what would run, with the SQL
  relops.release.db_migrate:
    db_url: sqlite:////var/lib/orders/orders.db
    migrations_dir: /opt/orders/current/migrations
  check_mode: true
  register: pending

- name: Expand before switching traffic, contract after
  relops.release.db_migrate:
    db_url: sqlite:////var/lib/orders/orders.db
    migrations_dir: /opt/orders/current/migrations
    phase: expand

- name: Undo down to version 7 (every version above it needs a U script)
  relops.release.db_migrate:
    db_url: sqlite:////var/lib/orders/orders.db
    migrations_dir: /opt/orders/current/migrations
    state: undone
    target: "7"

- name: Before rolling the application back to 2.3.0, fit the schema to what 2.3.0 supports
  relops.release.db_migrate:
    db_url: postgresql://app@db.example.com/orders
    migrations_dir: /opt/orders/releases/2.4.0/migrations
    state: compatible
    app_version: 2.3.0
    supported:
      min: "5"
      max: "7"

- name: Adopt an existing database at version 3
  relops.release.db_migrate:
    db_url: postgresql://app@db.example.com/orders
    migrations_dir: /opt/orders/current/migrations
    state: baselined
    baseline_version: "3"
"""

RETURN = r"""
version_before:
  description: Schema version before the task (null on an empty history).
  returned: always
  type: str
  sample: "2"
version_after:
  description: Schema version after the task (in check mode, the version it would reach).
  returned: always
  type: str
  sample: "5"
applied:
  description: Scripts applied (or undone) by this task, in order.
  returned: always
  type: list
  elements: dict
  sample: [{"script": "V3__add_invoices.sql", "version": "3", "description": "add invoices", "type": "SQL",
            "checksum": -1523427396, "phase": "expand", "transactional": true, "execution_time": 12}]
pending:
  description: In check mode, the scripts that would run, each with its C(sql) after placeholder replacement.
  returned: in check mode
  type: list
  elements: dict
held_back:
  description: Scripts held back for the contract phase.
  returned: when O(state=migrated)
  type: list
  elements: str
  sample: ["V4__drop_old_name.sql"]
failure:
  description: The failed script, the line of the failing statement and the database's message.
  returned: when a script failed
  type: dict
  sample: {"script": "V3__add_invoices.sql", "line": 4, "database_message": "no such table: custmers"}
compatibility:
  description: With O(state=compatible), the current version, the supported range and the undo planned.
  returned: when O(state=compatible)
  type: dict
  sample: {"current": "9", "supported": {"min": "5", "max": "7"}, "compatible": false, "undo_to": "7",
           "undo_scripts": ["U9__drop_totals.sql", "U8__add_totals.sql"]}
repaired:
  description: Scripts whose earlier failed attempt was replaced in the history by this successful one.
  returned: when O(state=migrated)
  type: list
  elements: str
"""

from typing import Any, Dict, Optional

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.relops.release.plugins.module_utils.migrations import (
    MigrationError,
    Migrator,
    Plan,
    connection_argument_spec,
    needs_psycopg,
    open_migrator,
    plan_compatibility,
    version_key,
)
from ansible_collections.relops.release.plugins.module_utils.url_secrets import url_secrets


def argument_spec() -> Dict[str, Any]:
    spec = connection_argument_spec()
    spec.update(
        state={
            "type": "str",
            "choices": ["migrated", "undone", "validated", "baselined", "compatible"],
            "default": "migrated",
        },
        supported={"type": "dict", "options": {"min": {"type": "str"}, "max": {"type": "str"}}},
        app_version={"type": "str"},
        target={"type": "str"},
        phase={"type": "str", "choices": ["all", "expand", "contract"], "default": "all"},
        baseline_version={"type": "str", "default": "1"},
        installed_by={"type": "str"},
        # Read by the action plugin in front of this module (the permit guard); the module ignores it.
        permit={"type": "raw"},
    )
    return spec


def predicted_version(current: Optional[str], plan: Plan) -> Optional[str]:
    versions = [script.version for script in plan.versioned if script.version is not None]
    if current is not None:
        versions.append(current)
    return max(versions, key=version_key) if versions else None


def diff(before: Optional[str], after: Optional[str]) -> Dict[str, Any]:
    return {"before": {"schema_version": before}, "after": {"schema_version": after}}


def migrate(module: AnsibleModule, migrator: Migrator) -> Dict[str, Any]:
    state = migrator.state()
    plan = migrator.plan(state)
    held_back = [script.script for script in plan.held_back]
    if module.check_mode:
        placeholders = migrator.options.placeholders
        after = predicted_version(state.current, plan)
        return {
            "changed": bool(plan.scripts),
            "pending": [script.as_dict(placeholders) for script in plan.scripts],
            "applied": [],
            "held_back": held_back,
            "version_before": state.current,
            "version_after": after,
            "diff": diff(state.current, after),
        }
    outcome = migrator.migrate()
    result = {
        "changed": outcome.changed,
        "applied": outcome.applied,
        "held_back": held_back,
        "repaired": outcome.repaired,
        "version_before": outcome.before,
        "version_after": outcome.after,
        "diff": diff(outcome.before, outcome.after),
    }
    if outcome.failure is not None:
        module.fail_json(msg=outcome.failure["message"], failure=outcome.failure, **result)
    return result


def undo(module: AnsibleModule, migrator: Migrator, target: Optional[str]) -> Dict[str, Any]:
    if not target:
        module.fail_json(msg="state=undone needs target, the version to undo down to (it stays applied)")
    state = migrator.state()
    scripts = migrator.undo_plan(str(target), state)
    if module.check_mode:
        remaining = [row.version for key, row in state.applied.items() if key <= version_key(str(target))]
        after = max(remaining, key=lambda v: version_key(v or "0")) if remaining else None
        placeholders = migrator.options.placeholders
        return {
            "changed": bool(scripts),
            "pending": [script.as_dict(placeholders) for script in scripts],
            "applied": [],
            "version_before": state.current,
            "version_after": after,
            "diff": diff(state.current, after),
        }
    outcome = migrator.undo(str(target))
    result = {
        "changed": outcome.changed,
        "applied": outcome.applied,
        "version_before": outcome.before,
        "version_after": outcome.after,
        "diff": diff(outcome.before, outcome.after),
    }
    if outcome.failure is not None:
        module.fail_json(msg=outcome.failure["message"], failure=outcome.failure, **result)
    return result


def baseline(module: AnsibleModule, migrator: Migrator, version: str) -> Dict[str, Any]:
    state = migrator.state()
    if module.check_mode:
        if state.baseline is not None and version_key(state.baseline.version or "0") == version_key(version):
            changed = False
        elif state.rows:
            raise MigrationError(
                "cannot baseline at version %s: the history already holds %d entries (current version %s); "
                "baseline only a database that has no history" % (version, len(state.rows), state.current)
            )
        else:
            changed = True
    else:
        changed = migrator.baseline(version)
    after = version if changed else state.current
    return {
        "changed": changed,
        "applied": [],
        "version_before": state.current,
        "version_after": after,
        "diff": diff(state.current, after),
    }


def make_compatible(module: AnsibleModule, migrator: Migrator) -> Dict[str, Any]:
    supported = module.params["supported"] or {}
    app = "application version %s" % module.params["app_version"] if module.params["app_version"] else "the application"
    plan = plan_compatibility(migrator, supported.get("min"), supported.get("max"), app)
    result: Dict[str, Any] = {"compatibility": plan.as_dict(), "version_before": plan.current}
    if plan.compatible or module.check_mode:
        after = plan.undo_to or plan.current
        placeholders = migrator.options.placeholders
        result.update(
            changed=not plan.compatible,
            applied=[],
            pending=[script.as_dict(placeholders) for script in plan.scripts],
            version_after=after,
            diff=diff(plan.current, after),
        )
        return result
    outcome = migrator.undo(str(supported.get("max")))
    result.update(
        changed=outcome.changed,
        applied=outcome.applied,
        version_after=outcome.after,
        diff=diff(outcome.before, outcome.after),
    )
    if outcome.failure is not None:
        module.fail_json(msg=outcome.failure["message"], failure=outcome.failure, **result)
    return result


def validate(migrator: Migrator) -> Dict[str, Any]:
    state = migrator.state()
    migrator.plan(state)
    return {"changed": False, "applied": [], "version_before": state.current, "version_after": state.current}


def run_module() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    module.no_log_values.update(url_secrets(module.params["db_url"]))
    params = module.params
    if needs_psycopg(params["db_url"]):
        module.fail_json(msg=missing_required_lib("psycopg (version 3)"))
    state = params["state"]
    phase = None if params["phase"] == "all" else params["phase"]
    migrator: Optional[Migrator] = None
    try:
        migrator = open_migrator(
            params,
            target=params["target"] if state == "migrated" else None,
            phase=phase,
            read_only=module.check_mode or state == "validated",
        )
        if state == "migrated":
            result = migrate(module, migrator)
        elif state == "undone":
            result = undo(module, migrator, params["target"])
        elif state == "compatible":
            result = make_compatible(module, migrator)
        elif state == "baselined":
            result = baseline(module, migrator, params["baseline_version"])
        else:
            result = validate(migrator)
    except MigrationError as exc:
        module.fail_json(msg=str(exc))
    finally:
        if migrator is not None:
            migrator.db.close()
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()

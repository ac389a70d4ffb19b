"""OpenBao in real ansible-playbook runs: the release's secrets through community.hashi_vault lookups and the
secrets check, transit signing through artifact_sign, the schema_migration role's short-lived database login."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Iterator

import psycopg
import psycopg.sql
import pytest
from fixtures.migrations import ScriptFolder
from fixtures.openbao import OWNER_ROLE, DatabaseRole, OpenBao
from fixtures.playbooks import REPO, Ansible
from fixtures.postgres import PasswordDatabase, PostgresServer, free_port, password_database
from fixtures.signing import DEMO_APP, demo_manifest

from ansible_collections.relops.release.plugins.plugin_utils.artifacts.packaging import plan_package, write_package
from ansible_collections.relops.release.plugins.plugin_utils.audit.sealing import load_public_keys
from ansible_collections.relops.release.plugins.plugin_utils.audit.verify import verify_trail
from ansible_collections.relops.release.plugins.plugin_utils.secrets.openbao import OpenBaoClient, OpenBaoConfig
from ansible_collections.relops.release.plugins.plugin_utils.secrets.transit import read_key

MIGRATE_PLAY = """
- name: Migrate with a login of the run's own
  hosts: app1
  gather_facts: false
  tasks:
    - name: Apply the migrations
      ansible.builtin.include_role:
        name: relops.release.schema_migration
      vars:
        schema_migration_db_url: "{{ db_url }}"
        schema_migration_dir: "{{ migrations_dir }}"
        schema_migration_service: orders
        schema_migration_environment: production
        schema_migration_release: "{{ release }}"
        schema_migration_credentials: {role: migrator, mount: "{{ mount }}"}
"""

INVENTORY = """
[app]
app1

[app:vars]
ansible_connection=local
ansible_python_interpreter={{ ansible_playbook_python }}
"""


def _logins(server: PostgresServer) -> list[str]:
    with server.admin() as admin:
        rows = admin.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%%migrator%%'").fetchall()
    return [row[0] for row in rows]


def _installed_by(server: PostgresServer, db_url: str) -> list[str]:
    database = db_url.rsplit("/", 1)[1]
    with psycopg.connect(server.url(database)) as conn:
        return [
            row[0] for row in conn.execute('SELECT installed_by FROM flyway_schema_history ORDER BY "installed_rank"')
        ]


def _revoke_status(output: str) -> str:
    found = re.search(
        r"TASK \[relops.release.schema_migration : Revoke the run's database login[^\n]*\n(?:[^\n]*\n)*?"
        r"(changed|ok|skipping|fatal): \[app1\]",
        output,
    )
    return found.group(1) if found else "(the revoke task did not run)"


@pytest.mark.postgres
def test_migrations_run_under_a_login_of_their_own_that_is_gone_after_success_and_after_failure(
    ansible: Ansible, openbao: OpenBao, openbao_database_role: DatabaseRole, postgres_server: PostgresServer
) -> None:
    scripts = ScriptFolder(os.path.join(ansible.workdir, "migrations"))
    scripts.write("V1__orders.sql", "CREATE TABLE orders (id INT PRIMARY KEY);\n")
    inventory = os.path.join(ansible.workdir, "hosts.ini")
    with open(inventory, "w", encoding="utf-8") as handle:
        handle.write(INVENTORY)
    playbook = ansible.write_playbook(MIGRATE_PLAY, "migrate.yml")
    ledger = "sqlite:///" + os.path.join(ansible.workdir, "ledger.db").lstrip("/")
    env = {"BAO_ADDR": openbao.url, "BAO_TOKEN": openbao.token, "RELOPS_LEDGER_URL": ledger}
    variables = {
        "db_url": openbao_database_role.db_url,
        "migrations_dir": scripts.path,
        "mount": openbao_database_role.mount,
    }

    run = ansible.playbook(
        playbook, "-vvv", "-i", inventory, "-e", json.dumps({**variables, "release": "1.0.0"}), env=env
    )
    assert run.returncode == 0, run.report
    # The login's password is in no output, even at -vvv: the issue result is censored, db_password is no_log.
    assert "the output has been hidden" in run.output
    assert not re.search(r"['\"](db_)?password['\"]: ['\"][A-Za-z0-9-]{8,}", run.output), run.output
    assert _installed_by(postgres_server, openbao_database_role.db_url) == [OWNER_ROLE]
    assert _logins(postgres_server) == []
    assert _revoke_status(run.output) == "changed", run.output

    scripts.write("V2__broken.sql", "CREATE TABLE broken (id INT PRIMARY KEY;\n")
    run = ansible.playbook(
        playbook, "--diff", "-i", inventory, "-e", json.dumps({**variables, "release": "1.1.0"}), env=env
    )
    assert run.returncode != 0, run.report
    assert re.search(r"-lease \S+ live\n\+lease \S+ gone", run.output), run.output
    assert "V2__broken.sql" in run.output, run.output
    assert _revoke_status(run.output) == "changed", run.output
    assert _logins(postgres_server) == []


# roles/release's own migration step (tasks/migrate.yml: the schema read, then schema_migration), as main.yml
# includes it for the expand phase, with the package already unpacked.
RELEASE_MIGRATE_PLAY = """
- name: The release role's migration step with short-lived logins
  hosts: app1
  gather_facts: false
  vars:
    release_migration_phase: expand
    release_migrations_path: migrations
    release_migrations_host: app1
    release_name: orders
    release_environment: staging
    release_db_url: "{{ db_url }}"
    release_db_credentials: {role: migrator, mount: "{{ mount }}"}
  tasks:
    - name: Release 1.0.0's expand migrations
      ansible.builtin.include_role:
        name: relops.release.release
        tasks_from: migrate
      vars:
        release_package_dir: "{{ workdir }}/1.0.0"
        release_to_version: 1.0.0
    - name: Show the schema version before, read under a login of its own
      ansible.builtin.debug:
        msg: "schema before [{{ release_schema_before }}]"
    - name: Release 1.1.0's expand migrations, one of which fails
      ansible.builtin.include_role:
        name: relops.release.release
        tasks_from: migrate
      vars:
        release_package_dir: "{{ workdir }}/1.1.0"
        release_to_version: 1.1.0
"""


@pytest.mark.postgres
def test_the_release_role_migrates_under_short_lived_logins_gone_after_success_and_after_failure(
    ansible: Ansible, openbao: OpenBao, openbao_database_role: DatabaseRole, postgres_server: PostgresServer
) -> None:
    good = ScriptFolder(os.path.join(ansible.workdir, "1.0.0", "migrations"))
    good.write("V1__orders.sql", "CREATE TABLE orders (id INT PRIMARY KEY);\n")
    bad = ScriptFolder(os.path.join(ansible.workdir, "1.1.0", "migrations"))
    bad.write("V1__orders.sql", "CREATE TABLE orders (id INT PRIMARY KEY);\n")
    bad.write("V2__broken.sql", "CREATE TABLE broken (id INT PRIMARY KEY;\n")
    inventory = os.path.join(ansible.workdir, "hosts.ini")
    with open(inventory, "w", encoding="utf-8") as handle:
        handle.write(INVENTORY)
    playbook = ansible.write_playbook(RELEASE_MIGRATE_PLAY, "release-migrate.yml")
    ledger = "sqlite:///" + os.path.join(ansible.workdir, "ledger.db").lstrip("/")
    env = {"BAO_ADDR": openbao.url, "BAO_TOKEN": openbao.token, "RELOPS_LEDGER_URL": ledger}
    variables = {
        "db_url": openbao_database_role.db_url,
        "workdir": ansible.workdir,
        "mount": openbao_database_role.mount,
    }

    run = ansible.playbook(playbook, "-i", inventory, "-e", json.dumps(variables), env=env)
    assert run.returncode != 0, run.report
    # Each release: a login for the schema read and one for the migrations, each revoked after its step,
    # the second release's migration login after its migration failed.
    assert run.output.count("Issue a short-lived database login for this run") == 4, run.output
    revokes = re.findall(r"TASK \[relops.release.schema_migration : Revoke [^\n]*\n(changed|ok|fatal)", run.output)
    assert revokes == ["changed"] * 4, run.output
    assert '"msg": "schema before []"' in run.output, run.output
    assert "V2__broken.sql" in run.output, run.output
    # V1 applied and V2's failure recorded, both under a login that starts its sessions as the owner role.
    assert _installed_by(postgres_server, openbao_database_role.db_url) == [OWNER_ROLE, OWNER_ROLE]
    assert _logins(postgres_server) == []


SIGN_PLAY = """
- name: Read the release's secrets before anything changes
  ansible.builtin.import_playbook: {secrets_check}

- name: Sign with a key that stays in OpenBao, then verify with its exported public key
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Sign through the transit engine
      relops.release.artifact_sign:
        artifact: "{{{{ artifact }}}}"
        keys:
          - transit: {{key: release, mount: "{{{{ transit_mount }}}}"}}
        openbao: {{url: "{{{{ lookup('ansible.builtin.env', 'VAULT_ADDR') }}}}"}}
      register: signed
    - name: Write the keyring from the transit key's exported public keys
      ansible.builtin.copy:
        content: "{{{{ {{'keys': exported}} | to_yaml }}}}"
        dest: "{{{{ keyring }}}}"
        mode: "0600"
      vars:
        exported: "{{{{ lookup('relops.release.transit_keyring', 'release', mount=transit_mount) }}}}"
    - name: The signing result names the same public key
      ansible.builtin.assert:
        that: exported[0].public_key == signed.public_keys[0]
      vars:
        exported: "{{{{ lookup('relops.release.transit_keyring', 'release', mount=transit_mount) }}}}"
    - name: Verify, opening the release record in the ledger (whose password comes from OpenBao)
      relops.release.artifact_verify:
        path: "{{{{ artifact }}}}"
        envelope: "{{{{ signed.envelope }}}}"
        keyring: "{{{{ keyring }}}}"
        environment: staging
        record: true
      register: verified
    - name: Show the secrets reached the release (a digest only)
      ansible.builtin.debug:
        msg: "ledger password sha256 {{{{ relops_ledger_password | hash('sha256') }}}}"
"""

CANARY = "canary-7f3c9e1a-relops-secret"


def _store_release_secrets(openbao: OpenBao) -> None:
    openbao.write_kv("relops/ledger", {"password": CANARY + "-ledger"})
    openbao.write_kv("relops/servicenow", {"password": CANARY + "-servicenow"})
    openbao.write_kv("relops/audit", {"hmac_key": CANARY + "-audit"})


def _files_holding(root: str, needle: str) -> list[str]:
    found = []
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                if needle.encode() in handle.read():
                    found.append(path)
    return found


@pytest.fixture
def canary_ledger(postgres_server: PostgresServer) -> Iterator[PasswordDatabase]:
    """A ledger database whose role accepts only the ledger canary as its password."""
    with password_database(postgres_server, CANARY + "-ledger") as database:
        yield database


def _ledger_rows(url: str) -> bytes:
    """Every row of every table of a PostgreSQL ledger, as COPY writes them: what a dump of its data holds."""
    dump = b""
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        for schema, table in tables:
            query = psycopg.sql.SQL("COPY {}.{} TO STDOUT").format(*map(psycopg.sql.Identifier, (schema, table)))
            with conn.cursor().copy(query) as copy:
                dump += b"".join(bytes(block) for block in copy)
    return dump


@pytest.mark.postgres
def test_release_secrets_come_from_openbao_through_community_hashi_vault_and_a_sealed_openbao_stops_first(
    ansible: Ansible,
    private_openbao: OpenBao,
    postgres_server: PostgresServer,
    canary_ledger: PasswordDatabase,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    ledger = canary_ledger
    bundled = os.path.join(REPO, "build", "collections")
    assert os.path.isfile(os.path.join(bundled, "ansible_collections", "community", "hashi_vault", "MANIFEST.json")), (
        "community.hashi_vault is not installed in build/collections; run `make collections` (make setup does)"
    )
    openbao = private_openbao
    _store_release_secrets(openbao)
    transit = "transit"
    openbao.enable("transit", transit)
    openbao.request("POST", "%s/keys/release" % transit, json={"type": "ed25519"})
    openbao.request("POST", "%s/keys/audit" % transit, json={"type": "ed25519"})
    outputs = str(tmp_path_factory.mktemp("signed"))
    artifact = os.path.join(outputs, "demo-app-1.4.0.tar.gz")
    with open(artifact, "wb") as handle:
        write_package(plan_package(os.path.join(DEMO_APP, "app"), demo_manifest()), handle, "tar.gz")
    playbook = ansible.write_playbook(
        SIGN_PLAY.format(secrets_check=os.path.join(REPO, "playbooks", "secrets_check.yml")), "sign.yml"
    )
    variables = {"artifact": artifact, "transit_mount": transit, "keyring": os.path.join(outputs, "keyring.yml")}
    # The ledger is a PostgreSQL database whose role accepts only the canary from secret/relops/ledger, so the
    # ledger tasks really carry it; the URL is the inventory's own, pointed at the test's server.
    variables["relops_ledger_url"] = "postgresql://%s:{{ relops_ledger_password | urlencode }}@%s:%d/%s" % (
        ledger.role,
        postgres_server.host,
        postgres_server.port,
        ledger.database,
    )
    env = {
        # The tested relops.release first, then the bundled community.hashi_vault.
        "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join([ansible.collections_path, bundled]),
        "VAULT_ADDR": openbao.url,
        "VAULT_TOKEN": openbao.token,
    }
    args = ["-vvv", "-i", os.path.join(REPO, "inventories", "example_production"), "-e", json.dumps(variables)]

    trail = os.path.join(ansible.workdir, "audit", "trail.jsonl")
    anchors = os.path.join(outputs, "anchors.db")
    spool = os.path.join(outputs, "spool")
    audited = {
        **env,
        "ANSIBLE_CALLBACKS_ENABLED": "relops.release.audit",
        "RELOPS_AUDIT_PATH": trail,
        # The trail's checkpoints are signed by a transit key too, found through VAULT_ADDR / VAULT_TOKEN.
        "RELOPS_AUDIT_SIGNING_TRANSIT_KEY": "%s/audit" % transit,
        # Checkpoints anchored in a SQLite ledger; every event spooled for an HTTP sink that is down.
        "RELOPS_AUDIT_LEDGER_URL": "sqlite:///" + anchors.lstrip("/"),
        "RELOPS_AUDIT_HTTP_URL": "http://127.0.0.1:%d/services/collector" % free_port(),
        "RELOPS_AUDIT_SPOOL_DIR": spool,
        "RELOPS_AUDIT_SINK_TIMEOUT": "1",
    }
    run = ansible.playbook(playbook, *args, env=audited)
    assert run.returncode == 0, run.report
    assert os.path.getsize(trail) > 0, "the audit trail was not written"
    audit_key = read_key(OpenBaoClient(OpenBaoConfig(url=openbao.url, token=openbao.token)), transit, "audit")
    exported = os.path.join(outputs, "audit.pub")
    with open(exported, "w", encoding="ascii") as handle:
        handle.write(audit_key.versions[1].public_key_pem)
    report = verify_trail([trail], None, load_public_keys([exported]))
    assert report.ok and report.checkpoints >= 1, report.as_dict()
    assert hashlib.sha256((CANARY + "-ledger").encode()).hexdigest() in run.output, "the lookup did not reach OpenBao"
    assert run.output.count(CANARY) == 0, "a secret from OpenBao is in the -vvv output"
    # The run's files: the audit trail, ANSIBLE_LOCAL_TEMP, the state directory, the envelope and keyring,
    # the sink spool and the SQLite ledger's file bytes.
    assert _files_holding(ansible.workdir, CANARY) == [] and _files_holding(outputs, CANARY) == []
    spooled = [os.path.join(root, name) for root, _dirs, names in os.walk(spool) for name in names]
    assert sum(os.path.getsize(path) for path in spooled) > 0, "the sink spool was not written"
    with contextlib.closing(sqlite3.connect(anchors)) as sqlite:
        assert sqlite.execute("SELECT COUNT(*) FROM audit_anchors").fetchone()[0] > 0, "no anchor in the SQLite ledger"
    # The PostgreSQL ledger's rows: the release record was written with the canary as the password.
    rows = _ledger_rows(ledger.url)
    with open(artifact, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    assert digest.encode() in rows, "the release record is not in the ledger"
    assert rows.count(CANARY.encode()) == 0, "a secret from OpenBao is in the ledger's rows"
    envelope = artifact + ".intoto.json"
    with open(envelope, encoding="utf-8") as handle:
        assert json.load(handle)["signatures"][0]["keyid"] in run.output
    os.unlink(envelope)

    openbao.request("POST", "sys/seal")
    run = ansible.playbook(playbook, *args, env=env)
    assert run.returncode != 0, run.report
    assert "nothing was changed" in run.output, run.output
    assert "Vault is sealed, on get %s/v1/secret/data/relops/ledger" % openbao.url in run.output, run.output
    assert not os.path.exists(envelope), "the play went on to sign although a secret could not be read"

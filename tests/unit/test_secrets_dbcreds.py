"""Short-lived PostgreSQL logins from OpenBao's database secrets engine, against real OpenBao and PostgreSQL."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fixtures.migrations import ScriptFolder
from fixtures.openbao import OWNER_ROLE, DatabaseRole, OpenBao
from fixtures.postgres import PostgresServer

from ansible_collections.relops.release.plugins.module_utils import migrations as m
from ansible_collections.relops.release.plugins.plugin_utils.secrets import SecretsError, SecretsUnavailable
from ansible_collections.relops.release.plugins.plugin_utils.secrets.dbcreds import (
    issue_login,
    lease_exists,
    login_url,
    revoke_lease,
)
from ansible_collections.relops.release.plugins.plugin_utils.secrets.openbao import OpenBaoClient, OpenBaoConfig

pytestmark = pytest.mark.postgres


def _client(openbao: OpenBao) -> OpenBaoClient:
    return OpenBaoClient(OpenBaoConfig(url=openbao.url, token=openbao.token))


def _role_exists(server: PostgresServer, name: str) -> bool:
    with server.admin() as admin:
        return admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None


def _migrate(url: str, password: str, folder: str) -> Any:
    migrator = m.open_migrator({"db_url": url, "db_password": password, "migrations_dir": folder})
    try:
        return migrator.migrate()
    finally:
        migrator.db.close()


def test_a_migration_runs_under_its_own_login_which_is_gone_after_revocation(
    openbao: OpenBao, openbao_database_role: DatabaseRole, postgres_server: PostgresServer, tmp_path: Any
) -> None:
    client = _client(openbao)
    lease = issue_login(client, openbao_database_role.mount, openbao_database_role.role)
    assert 0 < lease.lease_duration <= openbao_database_role.ttl
    assert _role_exists(postgres_server, lease.username)
    folder = ScriptFolder(str(tmp_path / "migrations"))
    folder.write("V1__orders.sql", "CREATE TABLE orders (id INT PRIMARY KEY);\nSELECT current_user;\n")
    url = login_url(openbao_database_role.db_url, lease.username)
    assert lease.password not in url
    outcome = _migrate(url, lease.password, folder.path)
    assert outcome.failure is None and [a["script"] for a in outcome.applied] == ["V1__orders.sql"]
    with psycopg.connect(openbao_database_role.db_url.replace("://", "://postgres@")) as conn:
        # The login works as the owner role it starts as (ALTER ROLE ... SET role); postgres would read "postgres".
        installed_by = conn.execute('SELECT installed_by FROM flyway_schema_history WHERE "version" = %s', ("1",))
        assert installed_by.fetchone() == (OWNER_ROLE,)

    assert revoke_lease(client, lease.lease_id) is True
    assert not _role_exists(postgres_server, lease.username)
    assert not lease_exists(client, lease.lease_id)
    assert revoke_lease(client, lease.lease_id) is False
    with psycopg.connect(openbao_database_role.db_url.replace("://", "://postgres@")) as conn:
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'orders'").fetchone()
        assert owner == (OWNER_ROLE,), "objects belong to the stable owner role, not to the login"


def test_a_failed_migration_leaves_no_login_behind_once_revoked(
    openbao: OpenBao, openbao_database_role: DatabaseRole, postgres_server: PostgresServer, tmp_path: Any
) -> None:
    client = _client(openbao)
    lease = issue_login(client, openbao_database_role.mount, openbao_database_role.role)
    folder = ScriptFolder(str(tmp_path / "migrations"))
    folder.write("V1__broken.sql", "CREATE TABLE broken (id INT PRIMARY KEY;\n")
    try:
        outcome = _migrate(login_url(openbao_database_role.db_url, lease.username), lease.password, folder.path)
        assert outcome.failure is not None
    finally:
        revoke_lease(client, lease.lease_id)
    assert not _role_exists(postgres_server, lease.username)


def test_login_url_swaps_the_user_and_drops_any_password() -> None:
    assert login_url("postgresql://app:old@db.example.com:5432/orders?sslmode=require", "v-token-x") == (
        "postgresql://v-token-x@db.example.com:5432/orders?sslmode=require"
    )
    with pytest.raises(SecretsError, match=r"sqlite:///x.db is not postgresql://"):
        login_url("sqlite:///x.db", "v")


def test_a_role_the_engine_does_not_have_fails_naming_the_path(
    openbao: OpenBao, openbao_database_role: DatabaseRole
) -> None:
    with pytest.raises(SecretsError, match=r"creds/nobody"):
        issue_login(_client(openbao), openbao_database_role.mount, "nobody")


def test_a_sealed_openbao_issues_nothing_and_names_the_path(private_openbao: OpenBao) -> None:
    private_openbao.request("POST", "sys/seal")
    with pytest.raises(SecretsUnavailable, match=r"sealed; secret path database/creds/migrator cannot be read"):
        issue_login(_client(private_openbao), "database", "migrator")

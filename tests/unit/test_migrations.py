"""The migration engine on real SQLite and PostgreSQL databases."""

from __future__ import annotations

import json
import os
import signal
import time
import zlib

import pytest
from fixtures.migrations import ScriptFolder, start_migration

from ansible_collections.relops.release.plugins.module_utils import migrations as m
from ansible_collections.relops.release.plugins.module_utils.url_secrets import url_secrets

SQLITE_SLOW = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${rows}) SELECT count(*) FROM c;"
)


def migrator(url: str, folder: ScriptFolder, **options: object) -> m.Migrator:
    placeholders = dict(options.pop("placeholders", {}) or {})  # type: ignore[call-overload]
    scripts = m.load_scripts(folder.path, placeholders)
    return m.Migrator(m.open_database(url), scripts, m.Options(placeholders=placeholders, **options))  # type: ignore[arg-type]


def count(url: str, sql: str) -> int:
    db = m.open_database(url)
    try:
        return int(db.query(sql)[0][0])
    finally:
        db.close()


def has_table(url: str, table: str) -> bool:
    db = m.open_database(url)
    try:
        return db.table_exists(table)
    finally:
        db.close()


# -- checksums and versions ---------------------------------------------------


def java_style_crc(text: str) -> int:
    """An independent statement of the rule: CRC32 of the lines joined with nothing between them."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    value = zlib.crc32("".join(lines).encode("utf-8"))
    return value - 2**32 if value >= 2**31 else value


def test_checksum_matches_published_flyway_style_vector() -> None:
    # ebean's MChecksumTest (the Flyway algorithm) expects 907060870 for a file holding the line "hello".
    assert m.flyway_checksum("hello\n") == 907060870
    assert m.flyway_checksum("hello") == 907060870


@pytest.mark.parametrize(
    "text",
    [
        "CREATE TABLE a (id INT);\nINSERT INTO a VALUES (1);\n",
        "-- comment\r\nSELECT 'é';\r\n\r\nSELECT 2;",
        "line one\rline two\rline three",
        "",
    ],
)
def test_checksum_is_crc32_of_lines_without_terminators(text: str) -> None:
    assert m.flyway_checksum(text) == java_style_crc(text)


def test_checksum_ignores_line_endings_and_bom_but_not_content() -> None:
    unix = "CREATE TABLE t (id INT);\nSELECT 1;\n"
    assert m.flyway_checksum(unix) == m.flyway_checksum(unix.replace("\n", "\r\n"))
    assert m.flyway_checksum("\ufeff" + unix) == m.flyway_checksum(unix)
    assert m.flyway_checksum(unix) != m.flyway_checksum(unix.replace("t", "u"))
    # Blank lines add no bytes, as in Flyway.
    assert m.flyway_checksum("SELECT 1;\n\nSELECT 2;\n") == m.flyway_checksum("SELECT 1;\nSELECT 2;\n")


def test_checksum_is_a_signed_java_int() -> None:
    text = "SELECT 42;\n"
    raw = zlib.crc32(b"SELECT 42;")
    assert m.flyway_checksum(text) == (raw - 2**32 if raw >= 2**31 else raw)
    assert -(2**31) <= m.flyway_checksum("x" * 1000) < 2**31


def test_versions_order_numerically_part_by_part() -> None:
    ordered = ["1", "1.1", "1.2", "1.10", "2", "2.0.1", "10", "2024.01.05"]
    assert sorted(["10", "1.10", "2024.01.05", "1.2", "2", "1", "2.0.1", "1.1"], key=m.version_key) == ordered
    assert m.version_key("1.0") == m.version_key("1") == m.version_key("1_0_0")
    assert m.version_key("1_1") == m.version_key("1.1")
    assert m.display_version("1_1") == "1.1"
    with pytest.raises(m.MigrationError, match=r"1\.a"):
        m.parse_version("1.a")


def test_file_names_follow_flyway() -> None:
    versioned = m.parse_script("V1_2__add_orders_table.sql", "SELECT 1;")
    assert versioned is not None and versioned.kind == "V"
    assert (versioned.version, versioned.description) == ("1.2", "add orders table")
    undo = m.parse_script("U1_2__drop_orders.sql", "SELECT 1;")
    assert undo is not None and undo.kind == "U" and undo.version == "1.2"
    repeatable = m.parse_script("R__refresh_views.sql", "SELECT 1;")
    assert repeatable is not None and repeatable.version is None and repeatable.description == "refresh views"
    assert m.parse_script("README.md", "") is None
    with pytest.raises(m.MigrationError, match=r"V__oops\.sql"):
        m.parse_script("V__oops.sql", "")


def test_headers_declare_phase_and_transactionality() -> None:
    script = m.parse_script("V3__drop.sql", "-- relops:phase=contract\n-- relops:transactional=false\nDROP TABLE x;\n")
    assert script is not None and script.phase == "contract" and script.transactional is False
    plain = m.parse_script("V4__add.sql", "CREATE TABLE y (id INT);\n-- relops:phase=contract\n")
    assert plain is not None and plain.phase == "expand" and plain.transactional is True
    with pytest.raises(m.MigrationError, match="relops:phase=later"):
        m.parse_script("V5__bad.sql", "-- relops:phase=later\nSELECT 1;")


def test_placeholders_are_replaced_and_unknown_ones_named() -> None:
    script = m.parse_script("V1__t.sql", "CREATE TABLE ${prefix}_users (id INT);")
    assert script is not None
    assert script.sql({"prefix": "app"}) == "CREATE TABLE app_users (id INT);"
    with pytest.raises(m.MigrationError, match=r"\$\{prefix\}"):
        script.sql({})
    # A versioned checksum covers the text as written; a repeatable's covers the placeholder values.
    v1 = m.parse_script("V1__t.sql", "SELECT '${a}';", {"a": "1"})
    v2 = m.parse_script("V1__t.sql", "SELECT '${a}';", {"a": "2"})
    r1 = m.parse_script("R__t.sql", "SELECT '${a}';", {"a": "1"})
    r2 = m.parse_script("R__t.sql", "SELECT '${a}';", {"a": "2"})
    assert v1 is not None and v2 is not None and r1 is not None and r2 is not None
    assert v1.checksum == v2.checksum and r1.checksum != r2.checksum


def test_statements_split_on_top_level_semicolons_only() -> None:
    sql = (
        "-- header; not a statement\n"
        "INSERT INTO t VALUES ('a;b');\n"
        "/* block; comment */\n"
        "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n"
        'SELECT "odd;name" FROM t\n'
    )
    statements = m.split_statements(sql, "postgresql")
    assert [s.sql.split()[0] for s in statements] == ["INSERT", "CREATE", "SELECT"]
    assert statements[0].sql == "INSERT INTO t VALUES ('a;b');" and statements[0].line == 2
    assert "$body$ SELECT 1; $body$" in statements[1].sql
    assert statements[1].line == 4 and statements[2].line == 5
    trigger = (
        "CREATE TRIGGER trg AFTER INSERT ON t BEGIN\n  UPDATE t SET x = 1;\n  UPDATE t SET y = 2;\nEND;\nSELECT 1;"
    )
    assert [s.line for s in m.split_statements(trigger, "sqlite")] == [1, 5]


# -- migrating real databases -------------------------------------------------


def five_migrations(scripts: ScriptFolder, third: str) -> None:
    scripts.write("V1__customers.sql", "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50));\n")
    scripts.write("V2__orders.sql", "CREATE TABLE orders (id INT PRIMARY KEY);\nINSERT INTO orders VALUES (1);\n")
    scripts.write("V3__invoices.sql", third)
    scripts.write("V4__items.sql", "CREATE TABLE items (id INT);\n")
    scripts.write("V5__notes.sql", "CREATE TABLE notes (id INT);\n")


def test_third_of_five_fails_then_fix_and_rerun_completes(db_url: str, scripts: ScriptFolder) -> None:
    broken = (
        "CREATE TABLE invoices (id INT);\nINSERT INTO invoices VALUES (1);\n\nINSERT INTO no_such_table VALUES (1);\n"
    )
    five_migrations(scripts, broken)
    outcome = migrator(db_url, scripts).migrate()
    assert [a["script"] for a in outcome.applied] == ["V1__customers.sql", "V2__orders.sql"]
    failure = outcome.failure
    assert failure is not None and failure["script"] == "V3__invoices.sql" and failure["line"] == 4
    assert "no_such_table" in failure["database_message"]
    assert "V3__invoices.sql failed at line 4" in failure["message"]
    # The third ran in its own transaction: its first statements are gone too.
    assert has_table(db_url, "orders") and not has_table(db_url, "invoices") and not has_table(db_url, "items")
    history = migrator(db_url, scripts).history()
    assert [(r.version, r.success) for r in history] == [("1", True), ("2", True), ("3", False)]
    assert history[2].script == "V3__invoices.sql"

    scripts.write("V3__invoices.sql", "CREATE TABLE invoices (id INT);\nINSERT INTO invoices VALUES (1);\n")
    rerun = migrator(db_url, scripts).migrate()
    assert rerun.failure is None and rerun.repaired == ["V3__invoices.sql"]
    assert [a["version"] for a in rerun.applied] == ["3", "4", "5"]
    assert [(r.version, r.success) for r in migrator(db_url, scripts).history()] == [
        ("1", True),
        ("2", True),
        ("3", True),
        ("4", True),
        ("5", True),
    ]
    assert migrator(db_url, scripts).migrate().applied == []


def test_history_has_flyway_layout(db_url: str, scripts: ScriptFolder) -> None:
    scripts.write("V1_1__first_table.sql", "CREATE TABLE first_table (id INT);\n")
    engine = migrator(db_url, scripts, installed_by="deployer")
    engine.migrate()
    row = engine.history()[0]
    assert row.as_dict().keys() == {
        "installed_rank",
        "version",
        "description",
        "type",
        "script",
        "checksum",
        "installed_by",
        "installed_on",
        "execution_time",
        "success",
    }
    assert (row.installed_rank, row.version, row.description, row.type) == (1, "1.1", "first table", "SQL")
    assert row.checksum == m.flyway_checksum("CREATE TABLE first_table (id INT);\n")
    assert row.installed_by == "deployer" and row.success is True and row.installed_on


def test_two_concurrent_runs_apply_each_migration_once(db_url: str, scripts: ScriptFolder) -> None:
    slow = "SELECT pg_sleep(1);\n" if db_url.startswith("postgresql") else SQLITE_SLOW.replace("${rows}", "3000000")
    scripts.write("V1__slow.sql", "CREATE TABLE slow (id INT);\n" + slow + "\n")
    scripts.write("V2__more.sql", "CREATE TABLE more (id INT);\n")
    scripts.write("R__view.sql", "DROP VIEW IF EXISTS v_more;\nCREATE VIEW v_more AS SELECT id FROM more;\n")
    first, second = start_migration(db_url, scripts.path), start_migration(db_url, scripts.path)
    results = [json.loads(process.communicate(timeout=120)[0]) for process in (first, second)]
    applied = sorted(results, key=lambda result: -len(result["applied"]))
    assert applied[0]["applied"] == ["V1__slow.sql", "V2__more.sql", "R__view.sql"]
    assert applied[1]["applied"] == [] and applied[1]["failure"] is None
    assert count(db_url, "SELECT count(*) FROM flyway_schema_history") == 3


def test_kill_during_long_migration_frees_the_lock(db_url: str, scripts: ScriptFolder) -> None:
    postgres = db_url.startswith("postgresql")
    slow = "SELECT pg_sleep(${rows});\n" if postgres else SQLITE_SLOW + "\n"
    scripts.write("V1__base.sql", "CREATE TABLE base (id INT);\n")
    scripts.write("V2__long.sql", "CREATE TABLE long_one (id INT);\n" + slow)
    process = start_migration(db_url, scripts.path, {"rows": "60" if postgres else "400000000"})
    wait_until_second_migration(db_url)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    rerun = migrator(db_url, scripts, placeholders={"rows": "0" if postgres else "1"}, lock_timeout=30)
    outcome = rerun.migrate()
    assert outcome.failure is None
    assert [a["script"] for a in outcome.applied] == ["V2__long.sql"]
    assert outcome.after == "2" and has_table(db_url, "long_one")


def wait_until_second_migration(url: str) -> None:
    """Wait until the child holds the lock and is inside V2 (V1 recorded)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if has_table(url, "flyway_schema_history") and count(url, "SELECT count(*) FROM flyway_schema_history") == 1:
            time.sleep(0.5)
            return
        time.sleep(0.05)
    raise AssertionError("the migration child never reached V2")


def test_checksum_drift_is_refused_naming_script_and_checksums(db_url: str, scripts: ScriptFolder) -> None:
    scripts.write("V1__t.sql", "CREATE TABLE t (id INT);\n")
    migrator(db_url, scripts).migrate()
    old = m.flyway_checksum("CREATE TABLE t (id INT);\n")
    scripts.write("V1__t.sql", "CREATE TABLE t (id BIGINT);\n")
    new = m.flyway_checksum("CREATE TABLE t (id BIGINT);\n")
    engine = migrator(db_url, scripts)
    with pytest.raises(m.MigrationError) as caught:
        engine.validate()
    assert "V1__t.sql" in str(caught.value) and str(old) in str(caught.value) and str(new) in str(caught.value)
    with pytest.raises(m.MigrationError, match=r"V1__t\.sql"):
        engine.migrate()
    assert m.info(engine)["drift"] == [
        {"script": "V1__t.sql", "version": "1", "applied_checksum": old, "current_checksum": new}
    ]


def test_repeatables_rerun_only_when_changed(db_url: str, scripts: ScriptFolder) -> None:
    scripts.write("V1__t.sql", "CREATE TABLE t (id INT);\nCREATE TABLE log (n INT);\n")
    scripts.write("R__log.sql", "INSERT INTO log VALUES (1);\n")
    assert [a["script"] for a in migrator(db_url, scripts).migrate().applied] == ["V1__t.sql", "R__log.sql"]
    assert migrator(db_url, scripts).migrate().applied == []
    scripts.write("R__log.sql", "INSERT INTO log VALUES (2);\n")
    assert [a["script"] for a in migrator(db_url, scripts).migrate().applied] == ["R__log.sql"]
    assert count(db_url, "SELECT count(*) FROM log") == 2


def test_undo_to_target_and_back_up(db_url: str, scripts: ScriptFolder) -> None:
    for version in (1, 2, 3):
        scripts.write("V%d__t%d.sql" % (version, version), "CREATE TABLE t%d (id INT);\n" % version)
        scripts.write("U%d__t%d.sql" % (version, version), "DROP TABLE t%d;\n" % version)
    migrator(db_url, scripts).migrate()
    down = migrator(db_url, scripts).undo("1")
    assert [a["script"] for a in down.applied] == ["U3__t3.sql", "U2__t2.sql"]
    assert (down.before, down.after) == ("3", "1")
    assert has_table(db_url, "t1") and not has_table(db_url, "t2") and not has_table(db_url, "t3")
    assert [r.type for r in migrator(db_url, scripts).history()][-2:] == ["UNDO_SQL", "UNDO_SQL"]
    up = migrator(db_url, scripts).migrate()
    assert [a["version"] for a in up.applied] == ["2", "3"] and up.after == "3"
    assert migrator(db_url, scripts).undo("3").applied == []


def test_undo_refuses_when_a_script_is_missing_and_changes_nothing(db_url: str, scripts: ScriptFolder) -> None:
    scripts.write("V1__a.sql", "CREATE TABLE a (id INT);\n")
    scripts.write("V2__b.sql", "CREATE TABLE b (id INT);\n")
    scripts.write("V3__c.sql", "CREATE TABLE c (id INT);\n")
    scripts.write("U3__c.sql", "DROP TABLE c;\n")
    migrator(db_url, scripts).migrate()
    with pytest.raises(m.MigrationError, match="no undo script for version 2"):
        migrator(db_url, scripts).undo("1")
    assert has_table(db_url, "c") and migrator(db_url, scripts).state().current == "3"


def test_out_of_order_off_refuses_and_on_applies(db_url: str, scripts: ScriptFolder) -> None:
    scripts.write("V1__a.sql", "CREATE TABLE a (id INT);\n")
    scripts.write("V3__c.sql", "CREATE TABLE c (id INT);\n")
    migrator(db_url, scripts).migrate()
    scripts.write("V2__b.sql", "CREATE TABLE b (id INT);\n")
    with pytest.raises(m.MigrationError, match=r"V2__b\.sql.*out_of_order"):
        migrator(db_url, scripts).migrate()
    assert not has_table(db_url, "b")
    outcome = migrator(db_url, scripts, out_of_order=True).migrate()
    assert [a["script"] for a in outcome.applied] == ["V2__b.sql"] and outcome.after == "3"


def test_target_baseline_and_missing_scripts(db_url: str, scripts: ScriptFolder) -> None:
    for version in (1, 2, 3, 4):
        scripts.write("V%d__t%d.sql" % (version, version), "CREATE TABLE t%d (id INT);\n" % version)
    assert migrator(db_url, scripts).baseline("2") is True
    assert migrator(db_url, scripts).baseline("2") is False
    with pytest.raises(m.MigrationError, match="baseline only a database that has no history"):
        migrator(db_url, scripts).baseline("3")
    outcome = migrator(db_url, scripts, target="3").migrate()
    assert [a["version"] for a in outcome.applied] == ["3"] and outcome.before == "2" and outcome.after == "3"
    assert not has_table(db_url, "t1")
    baseline = migrator(db_url, scripts).history()[0]
    assert (baseline.type, baseline.version, baseline.script) == ("BASELINE", "2", "<< Flyway Baseline >>")
    migrator(db_url, scripts).migrate()
    scripts.remove("V3__t3.sql")
    with pytest.raises(m.MigrationError, match=r"version 3.*missing"):
        migrator(db_url, scripts).validate()


def test_contract_scripts_wait_for_the_contract_phase(db_url: str, scripts: ScriptFolder) -> None:
    scripts.write("V1__add.sql", "CREATE TABLE users (id INT, name VARCHAR(20), full_name VARCHAR(40));\n")
    scripts.write("V2__drop_name.sql", "-- relops:phase=contract\nCREATE TABLE gone (id INT);\n")
    scripts.write("V3__more.sql", "CREATE TABLE more (id INT);\n")
    expand = migrator(db_url, scripts, phase="expand")
    plan = expand.plan()
    assert [s.script for s in plan.versioned] == ["V1__add.sql"]
    assert [s.script for s in plan.held_back] == ["V2__drop_name.sql", "V3__more.sql"]
    assert [a["script"] for a in expand.migrate().applied] == ["V1__add.sql"]
    contract = migrator(db_url, scripts, phase="contract").migrate()
    assert [a["script"] for a in contract.applied] == ["V2__drop_name.sql", "V3__more.sql"]


@pytest.mark.postgres
def test_non_transactional_script_runs_outside_a_transaction(postgres_database: str, scripts: ScriptFolder) -> None:
    scripts.write("V1__t.sql", "CREATE TABLE t (id INT);\n")
    scripts.write("V2__index.sql", "-- relops:transactional=false\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n")
    outcome = migrator(postgres_database, scripts).migrate()
    assert outcome.failure is None and outcome.after == "2"
    assert count(postgres_database, "SELECT count(*) FROM pg_indexes WHERE indexname = 't_id'") == 1
    # The same statement inside a transaction is refused by PostgreSQL, which is why the header exists.
    scripts.write("V3__index.sql", "CREATE INDEX CONCURRENTLY t_id2 ON t (id);\n")
    failed = migrator(postgres_database, scripts).migrate()
    assert failed.failure is not None and "transaction block" in failed.failure["database_message"]


def test_lock_times_out_naming_the_database(db_url: str, scripts: ScriptFolder) -> None:
    scripts.write("V1__t.sql", "CREATE TABLE t (id INT);\n")
    holder = migrator(db_url, scripts)
    holder.db.acquire_lock(holder.options.table, 1)
    try:
        with pytest.raises(m.MigrationError, match="lock_timeout"):
            migrator(db_url, scripts, lock_timeout=0.3).migrate()
    finally:
        holder.db.release_lock()
    assert migrator(db_url, scripts).migrate().after == "1"


def test_rollback_compatibility_undoes_when_possible_and_refuses_otherwise(db_url: str, scripts: ScriptFolder) -> None:
    for version in (1, 2, 3, 4):
        scripts.write("V%d__t%d.sql" % (version, version), "CREATE TABLE t%d (id INT);\n" % version)
    scripts.write("U4__t4.sql", "DROP TABLE t4;\n")
    migrator(db_url, scripts).migrate()

    fits = m.plan_compatibility(migrator(db_url, scripts), "2", "4", "app 2.0")
    assert fits.compatible and fits.scripts == [] and fits.current == "4"

    plan = m.plan_compatibility(migrator(db_url, scripts), "2", "3", "app 1.9")
    assert not plan.compatible and plan.undo_to == "3" and [s.script for s in plan.scripts] == ["U4__t4.sql"]

    with pytest.raises(
        m.MigrationError, match=r"app 1\.5 supports schema versions up to 2 .*no undo script for version 3"
    ):
        m.plan_compatibility(migrator(db_url, scripts), "1", "2", "app 1.5")
    with pytest.raises(m.MigrationError, match=r"app 3\.0 needs schema version 5 or newer .* an undo cannot raise"):
        m.plan_compatibility(migrator(db_url, scripts), "5", None, "app 3.0")
    assert migrator(db_url, scripts).state().current == "4" and has_table(db_url, "t4")


def test_failed_repeatable_and_undo_attempts_give_way_to_the_fixed_ones(db_url: str, scripts: ScriptFolder) -> None:
    scripts.write("V1__t.sql", "CREATE TABLE t (id INT);\n")
    scripts.write("U1__t.sql", "DROP TABLE no_such_table;\n")
    scripts.write("R__seed.sql", "INSERT INTO missing VALUES (1);\n")
    first = migrator(db_url, scripts).migrate()
    assert first.failure is not None and first.failure["script"] == "R__seed.sql"
    scripts.write("R__seed.sql", "INSERT INTO t VALUES (1);\n")
    second = migrator(db_url, scripts).migrate()
    assert second.failure is None and second.repaired == ["R__seed.sql"]

    failed_undo = migrator(db_url, scripts).undo("0")
    assert failed_undo.failure is not None and failed_undo.failure["script"] == "U1__t.sql"
    assert [(r.type, r.success) for r in migrator(db_url, scripts).history()][-1] == ("UNDO_SQL", False)
    scripts.write("U1__t.sql", "DROP TABLE t;\n")
    assert migrator(db_url, scripts).undo("0").failure is None
    rows = migrator(db_url, scripts).history()
    assert [(r.type, r.version, r.success) for r in rows] == [
        ("SQL", "1", True),
        ("SQL", None, True),
        ("UNDO_SQL", "1", True),
    ]
    assert not has_table(db_url, "t")


def test_url_secrets_name_the_password_as_written_and_decoded() -> None:
    assert url_secrets("postgresql://app:s%40cret@db:5432/orders") == ["s%40cret", "s@cret"]
    assert url_secrets("postgresql://app:plain@db/orders") == ["plain"]
    assert url_secrets("postgresql://app@db/orders") == [] and url_secrets("sqlite:////var/app.db") == []


@pytest.mark.parametrize(
    ("statement", "keyword"),
    [
        ("COMMIT;", "COMMIT"),
        ("begin transaction;", "BEGIN"),
        ("END;", "END"),
        ("START TRANSACTION;", "START TRANSACTION"),
    ],
)
def test_transaction_control_in_a_transactional_script_is_refused_before_anything_runs(
    db_url: str, scripts: ScriptFolder, statement: str, keyword: str
) -> None:
    """Issue 22: a script's own COMMIT kept its table while the history said it failed, and the rerun
    failed with "already exists". Now nothing runs, not even the scripts before it."""
    scripts.write("V1__customers.sql", "CREATE TABLE customers (id INT);\n")
    scripts.write(
        "V2__orders.sql", "-- orders\nCREATE TABLE orders (id INT);\n%s\nCREATE TABLE items (id INT);\n" % statement
    )
    with pytest.raises(m.MigrationError) as refused:
        migrator(db_url, scripts).migrate()
    message = str(refused.value)
    assert message.startswith("V2__orders.sql, line 3: %s controls the transaction" % keyword), message
    assert "relops:transactional=false" in message and "Nothing was applied" in message
    assert not has_table(db_url, "customers") and not has_table(db_url, "orders") and not has_table(db_url, "items")
    assert migrator(db_url, scripts).history() == []
    # The same script marked non-transactional runs as written (its author owns the transaction).
    scripts.write(
        "V2__orders.sql", "-- relops:transactional=false\nCREATE TABLE orders (id INT);\nCREATE TABLE items (id INT);\n"
    )
    assert [a["version"] for a in migrator(db_url, scripts).migrate().applied] == ["1", "2"]


def test_transaction_words_inside_statements_are_not_transaction_control(db_url: str, scripts: ScriptFolder) -> None:
    if db_url.startswith("sqlite"):
        body = (
            "CREATE TABLE audit (id INT);\nCREATE TABLE t (id INT);\n"
            "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN INSERT INTO audit VALUES (NEW.id); END;\n"
        )
    else:
        body = "CREATE TABLE t (id INT);\nDO $$ BEGIN INSERT INTO t VALUES (1); END $$;\nSAVEPOINT a;\nROLLBACK TO a;\n"
    scripts.write("V1__t.sql", "-- a comment saying COMMIT\n" + body)
    outcome = migrator(db_url, scripts).migrate()
    assert outcome.failure is None and [a["version"] for a in outcome.applied] == ["1"]

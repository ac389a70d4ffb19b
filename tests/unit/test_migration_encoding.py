"""Script encodings as Flyway reads them, on real SQLite and PostgreSQL databases (issue 19).

Flyway's documented behaviour, which these tests hold the engine to:
- its parser reads every script through a BOM-stripping reader (flyway-core, internal/parser/Parser.java:
  ``new BomStrippingReader(new BufferedReader(resource.read(), 4096))``), so a leading byte-order mark never
  reaches the database;
- its checksum (internal/resolver/ChecksumCalculator.java) drops the BOM from the first line and takes the
  CRC32 of each decoded line's UTF-8 bytes, so the checksum depends on the text, not on the file's encoding;
- ``flyway.encoding`` (documentation/configuration/parameters/encoding.md) names the scripts' encoding,
  default UTF-8, among US-ASCII, ISO-8859-1, UTF-8, UTF-16BE, UTF-16LE and UTF-16.
"""

from __future__ import annotations

import codecs
import os
import re

import pytest
from fixtures.migrations import ScriptFolder

from ansible_collections.relops.release.plugins.module_utils import migrations as m

CUSTOMERS = "-- Kunden, Stammdaten für Bestellungen\nCREATE TABLE customers (id INT, name VARCHAR(40));\n"
MUELLER = "INSERT INTO customers (id, name) VALUES (1, 'Müller');\n"


def write_bytes(folder: ScriptFolder, name: str, data: bytes) -> str:
    os.makedirs(folder.path, exist_ok=True)
    path = os.path.join(folder.path, name)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def names(url: str) -> list[str]:
    db = m.open_database(url)
    try:
        return [str(row[0]) for row in db.query("SELECT name FROM customers ORDER BY id")]
    finally:
        db.close()


def recorded_checksums(url: str) -> dict[str, int]:
    db = m.open_database(url)
    try:
        rows = db.query('SELECT "script", "checksum" FROM flyway_schema_history')
        return {str(script): int(checksum) for script, checksum in rows}
    finally:
        db.close()


def migrate(url: str, folder: ScriptFolder, encoding: str = m.DEFAULT_ENCODING) -> m.Outcome:
    migrator = m.Migrator(m.open_database(url), m.load_scripts(folder.path, encoding=encoding))
    try:
        return migrator.migrate()
    finally:
        migrator.db.close()


def test_utf8_bom_is_stripped_before_execution(db_url: str, scripts: ScriptFolder) -> None:
    # The mark before a keyword and before a header comment: PostgreSQL answered a syntax error at line 1.
    write_bytes(scripts, "V1__customers.sql", codecs.BOM_UTF8 + CUSTOMERS.split("\n", 1)[1].encode())
    write_bytes(scripts, "V2__mueller.sql", codecs.BOM_UTF8 + ("-- relops:phase=expand\n" + MUELLER).encode())
    outcome = migrate(db_url, scripts)
    assert outcome.failure is None and [a["script"] for a in outcome.applied] == [
        "V1__customers.sql",
        "V2__mueller.sql",
    ]
    assert names(db_url) == ["Müller"]
    script = m.load_scripts(scripts.path)[1]
    assert not script.text.startswith(m.BYTE_ORDER_MARK) and script.phase == "expand"
    # The checksum is that of the file without the mark, as Flyway computes it.
    assert recorded_checksums(db_url)["V2__mueller.sql"] == m.flyway_checksum("-- relops:phase=expand\n" + MUELLER)


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-16", "UTF-16LE", "UTF-8"])
def test_encoding_option_reads_the_scripts_text(db_url: str, scripts: ScriptFolder, encoding: str) -> None:
    bom = {"UTF-16LE": codecs.BOM_UTF16_LE, "UTF-8": codecs.BOM_UTF8}.get(encoding, b"")
    write_bytes(scripts, "V1__customers.sql", bom + CUSTOMERS.encode(encoding))
    write_bytes(scripts, "V2__mueller.sql", MUELLER.replace("\n", "\r\n").encode(encoding))
    outcome = migrate(db_url, scripts, encoding)
    assert outcome.failure is None and len(outcome.applied) == 2
    assert names(db_url) == ["Müller"]
    # Flyway's checksum covers the decoded text, so every encoding of one text has the UTF-8 file's checksum.
    assert recorded_checksums(db_url) == {
        "V1__customers.sql": m.flyway_checksum(CUSTOMERS),
        "V2__mueller.sql": m.flyway_checksum(MUELLER),
    }


def test_wrong_encoding_names_the_file_line_and_column(scripts: ScriptFolder) -> None:
    write_bytes(scripts, "V1__customers.sql", b"CREATE TABLE customers (id INT);\n")
    path = write_bytes(scripts, "V2__mueller.sql", ("-- seed\r\n\r\n" + MUELLER).encode("ISO-8859-1"))
    with pytest.raises(m.MigrationError) as raised:
        m.load_scripts(scripts.path)
    message = str(raised.value)
    column = MUELLER.index("ü") + 1
    assert message.startswith("%s: byte 0xfc at line 3, column %d is not valid UTF-8" % (path, column)), message
    assert "set encoding" in message
    with pytest.raises(m.MigrationError, match=re.escape("line 1, column 3 is not valid US-ASCII")):
        m.decode_script("ab\u00e9".encode("utf-8"), "V9__x.sql", "US-ASCII")


def test_unknown_encoding_is_named(scripts: ScriptFolder) -> None:
    write_bytes(scripts, "V1__customers.sql", b"SELECT 1;\n")
    for encoding in ("UTF-9", "rot13"):
        with pytest.raises(m.MigrationError, match="encoding '%s' is not a text encoding" % encoding):
            m.load_scripts(scripts.path, encoding=encoding)


def test_files_that_are_not_migrations_are_not_read(scripts: ScriptFolder) -> None:
    write_bytes(scripts, "V1__customers.sql", b"SELECT 1;\n")
    write_bytes(scripts, "notes.txt", b"\xff\xfe not text at all \x80")
    assert [script.script for script in m.load_scripts(scripts.path)] == ["V1__customers.sql"]


def test_modules_take_encoding_with_flyways_default(scripts: ScriptFolder, tmp_path: "os.PathLike[str]") -> None:
    assert m.connection_argument_spec()["encoding"] == {"type": "str", "default": "UTF-8"}
    write_bytes(scripts, "V1__customers.sql", CUSTOMERS.encode("ISO-8859-1"))
    url = "sqlite:///" + os.path.join(str(tmp_path), "module.db").lstrip("/")
    params = {"db_url": url, "migrations_dir": scripts.path, "encoding": "ISO-8859-1"}
    migrator = m.open_migrator(params)
    try:
        assert migrator.versioned[0].text == CUSTOMERS
    finally:
        migrator.db.close()
    with pytest.raises(m.MigrationError, match=re.escape("V1__customers.sql: byte 0xfc at line 1")):
        m.open_migrator({**params, "encoding": "UTF-8"})

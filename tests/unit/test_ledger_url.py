from __future__ import annotations

import os
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.relops.release.plugins.plugin_utils.ledger import (
    LedgerURLError,
    parse_ledger_url,
    resolve_ledger_url,
)
from ansible_collections.relops.release.plugins.plugin_utils.ledger.url import redact_url, scrub


def test_sqlite_url_gives_an_absolute_path() -> None:
    url = parse_ledger_url("sqlite:///var/lib/relops/ledger.db")
    assert (url.dialect, url.path) == ("sqlite", "/var/lib/relops/ledger.db")


def test_sqlite_url_expands_home() -> None:
    assert parse_ledger_url("sqlite:///~/ledger.db").path == os.path.expanduser("~/ledger.db")


def test_postgresql_url_is_kept_whole() -> None:
    url = parse_ledger_url("postgresql://relops@db.example.com:5432/relops")
    assert (url.dialect, url.raw) == ("postgresql", "postgresql://relops@db.example.com:5432/relops")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("mysql://db/relops", "unsupported scheme 'mysql'"),
        ("/var/lib/ledger.db", "unsupported scheme '(none)'"),
        ("sqlite://host/ledger.db", "write three slashes"),
        ("sqlite:///", "no file path"),
        ("sqlite:///:memory:", "in-memory"),
        ("postgresql:///relops", "names no host"),
        ("postgresql://db:port/relops", "port that is not a number"),
        ("postgresql://db:5432/", "names no database"),
        ("", "is empty"),
    ],
)
def test_bad_urls_name_the_value_and_the_fix(text: str, fragment: str) -> None:
    with pytest.raises(LedgerURLError) as error:
        parse_ledger_url(text)
    message = str(error.value)
    assert fragment in message
    assert repr(text) in message, "the message must name the offending value"


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://relops@db:5432/relops?password=s3cretpw",
        "postgresql://relops:s3cretpw@db:5432/relops",
        "postgresql://relops:s3cretpw%zz@db:5432/relops",
    ],
)
def test_every_form_of_password_is_hidden(text: str) -> None:
    try:
        shown = parse_ledger_url(text).redacted()
    except LedgerURLError as error:
        shown = str(error)
    assert "s3cretpw" not in shown and "***" in shown


def test_password_never_appears_in_errors() -> None:
    with pytest.raises(LedgerURLError) as error:
        parse_ledger_url("postgresql://relops:hunter2@db:notaport/relops")
    assert "hunter2" not in str(error.value)
    assert "***" in str(error.value)


@given(st.text(alphabet="0123456789!$&+-=_~", min_size=4, max_size=20))
def test_redaction_hides_any_password(password: str) -> None:
    # The alphabet shares no character with the rest of the URL, so any leak shows.
    redacted = redact_url("postgresql://user:%s@dbhost/relops" % password)
    assert password not in redacted
    assert redacted == "postgresql://user:***@dbhost/relops"


def test_resolution_order_option_then_variable_then_environment_then_default() -> None:
    env = {"RELOPS_LEDGER_URL": "sqlite:///env.db", "XDG_STATE_HOME": "/state"}
    variables = {"relops_ledger_url": "sqlite:///var.db"}
    assert resolve_ledger_url("sqlite:///opt.db", variables, env).path == "/opt.db"
    assert resolve_ledger_url(None, variables, env).path == "/var.db"
    assert resolve_ledger_url(None, {}, env).path == "/env.db"
    assert resolve_ledger_url(None, {}, {"XDG_STATE_HOME": "/state"}).path == "/state/relops/ledger.db"


# A marker that no message text contains by chance, between characters that break a naive parse.
SECRET_CORE = "Hunter2Q"
_SPECIAL = st.text(alphabet="/#?@:%abc9", max_size=6)


@settings(max_examples=300)
@given(left=_SPECIAL, right=_SPECIAL)
def test_no_message_or_repr_shows_a_password_with_unencoded_characters(left: str, right: str) -> None:
    password = left + SECRET_CORE + right
    url = "postgresql://relops:%s@db.example.com:5432/relops" % password
    try:
        parsed = parse_ledger_url(url)
    except LedgerURLError as error:
        shown = [str(error), repr(error)]
    else:
        shown = [parsed.redacted(), repr(parsed), str(parsed)]
    shown.append(redact_url(url))
    shown.append(scrub("FATAL: password authentication failed (password %s)" % password, url))
    for text in shown:
        assert SECRET_CORE not in text, text


@settings(max_examples=200)
@given(left=_SPECIAL, right=_SPECIAL)
def test_a_percent_encoded_password_parses_and_is_hidden(left: str, right: str) -> None:
    password = left + SECRET_CORE + right
    url = "postgresql://relops:%s@db.example.com:5432/relops" % quote(password, safe="")
    parsed = parse_ledger_url(url)
    assert parsed.raw == url
    assert parsed.redacted() == "postgresql://relops:***@db.example.com:5432/relops"
    assert SECRET_CORE not in repr(parsed)


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://relops:abc/def@db/relops",
        "postgresql://relops:abc#def@db/relops",
        "postgresql://relops:abc?def@db/relops",
        "postgresql://relops:a@bc@db/relops",
    ],
)
def test_an_unencoded_character_in_the_password_is_refused_with_the_fix(text: str) -> None:
    with pytest.raises(LedgerURLError) as error:
        parse_ledger_url(text)
    message = str(error.value)
    assert "percent-encode" in message and "postgresql://relops:***@db/relops" in message
    assert "def" not in message and "bc@" not in message


def test_a_query_password_is_hidden_and_the_user_part_kept() -> None:
    url = "postgresql://relops@db:5432/relops?password=p@ss#word&sslmode=require"
    assert redact_url(url) == "postgresql://relops@db:5432/relops?password=***&sslmode=require"


def test_the_example_production_ledger_url_pattern_encodes_any_password() -> None:
    """inventories/example_production builds the URL with Jinja's urlencode, which leaves / alone."""
    import jinja2  # noqa: PLC0415 - Ansible's template engine, for this one check
    import yaml  # noqa: PLC0415
    from psycopg import conninfo  # noqa: PLC0415

    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "inventories", "example_production", "group_vars", "all.yml")
    with open(path, encoding="utf-8") as handle:
        pattern = yaml.safe_load(handle)["relops_ledger_url"]
    password = "a/b#c?d@e:f%g " + SECRET_CORE
    url = jinja2.Environment().from_string(pattern).render(relops_ledger_password=password)
    parsed = parse_ledger_url(url)
    assert conninfo.conninfo_to_dict(parsed.raw)["password"] == password
    assert SECRET_CORE not in parsed.redacted() and SECRET_CORE not in repr(parsed)

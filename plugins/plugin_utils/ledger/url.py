# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ledger URLs: where the ledger lives and which database speaks for it.

``sqlite:///absolute/path.db`` (or ``sqlite:///~/relative-to-home.db``) is the
embedded default; ``postgresql://user@host:port/db`` is the shared production
ledger. The URL is chosen, in order, from the task option ``ledger_url``, the
``relops_ledger_url`` variable, the ``RELOPS_LEDGER_URL`` environment variable,
and finally a SQLite file under the user's state directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

from ansible_collections.relops.release.plugins.module_utils.url_secrets import (
    needs_encoding,
    redact_url,
    scrub,
    url_secrets,
)

from .errors import LedgerURLError

__all__ = [
    "LEDGER_URL_ENV",
    "LEDGER_URL_VAR",
    "LedgerURL",
    "default_ledger_path",
    "parse_ledger_url",
    "redact_url",
    "resolve_ledger_url",
    "scrub",
    "url_secrets",
]

LEDGER_URL_ENV = "RELOPS_LEDGER_URL"
LEDGER_URL_VAR = "relops_ledger_url"
_URL_HELP = "use sqlite:///path/to/ledger.db or postgresql://user@host:port/dbname"


@dataclass(frozen=True)
class LedgerURL:
    """A parsed ledger URL."""

    dialect: str
    # Kept out of repr: it may hold the password, and a repr ends up in tracebacks and -vvv output.
    raw: str = field(repr=False)
    path: Optional[str] = None

    def redacted(self) -> str:
        """Return the URL with any password replaced, safe for messages and logs."""
        return redact_url(self.raw)


def default_ledger_path(environ: Optional[Mapping[str, str]] = None) -> str:
    """Return the embedded ledger's default file: $XDG_STATE_HOME/relops/ledger.db."""
    env = os.environ if environ is None else environ
    state_home = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state_home, "relops", "ledger.db")


def parse_ledger_url(url: str) -> LedgerURL:
    """Parse and check a ledger URL, raising LedgerURLError with the fix."""
    if not isinstance(url, str) or not url.strip():
        raise LedgerURLError("ledger_url %r is empty; %s" % (url, _URL_HELP))
    text = url.strip()
    if needs_encoding(text):
        raise LedgerURLError(
            "ledger_url %r has a character in its user or password that must be percent-encoded"
            " (/, #, ?, @, or a %% that starts no escape); write / as %%2F, # as %%23, ? as %%3F, @ as %%40,"
            " %% as %%25" % redact_url(text)
        )
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise LedgerURLError("ledger_url %r is malformed (%s); %s" % (redact_url(text), exc, _URL_HELP)) from None
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        return _parse_sqlite(text, parts.netloc, parts.path)
    if scheme in ("postgresql", "postgres"):
        return _parse_postgresql(text, parts)
    raise LedgerURLError(
        "ledger_url %r has unsupported scheme %r; %s" % (redact_url(text), parts.scheme or "(none)", _URL_HELP)
    )


def _parse_sqlite(text: str, netloc: str, path: str) -> LedgerURL:
    if netloc:
        shown = urlsplit(redact_url(text))
        raise LedgerURLError(
            "ledger_url %r names a host (%r) but SQLite is a local file; write three slashes: sqlite:///%s"
            % (redact_url(text), shown.netloc, (shown.netloc + shown.path).lstrip("/"))
        )
    if path in ("", "/"):
        raise LedgerURLError("ledger_url %r has no file path; %s" % (text, _URL_HELP))
    if path.startswith("/~"):
        path = os.path.expanduser(path[1:])
    if path in (":memory:", "/:memory:"):
        raise LedgerURLError(
            "ledger_url %r is an in-memory database, which every task would see empty; name a file instead" % text
        )
    return LedgerURL(dialect="sqlite", raw=text, path=os.path.abspath(path))


def _parse_postgresql(text: str, parts: Any) -> LedgerURL:
    if not parts.hostname and "host=" not in parts.query:
        raise LedgerURLError("ledger_url %r names no host; use postgresql://user@host:port/dbname" % redact_url(text))
    try:
        port = parts.port
    except ValueError:
        raise LedgerURLError(
            "ledger_url %r has a port that is not a number; use postgresql://user@host:5432/dbname" % redact_url(text)
        ) from None
    if port == 0:
        raise LedgerURLError("ledger_url %r has port 0; give the server's port" % redact_url(text))
    if parts.path.strip("/") == "":
        raise LedgerURLError(
            "ledger_url %r names no database; append it: postgresql://user@host:port/dbname" % redact_url(text)
        )
    _check_conninfo(text)
    return LedgerURL(dialect="postgresql", raw=text)


def _check_conninfo(text: str) -> None:
    """Let libpq's own parser judge the URL, so a bad escape fails here with the fix, not at connect time."""
    try:
        from psycopg import conninfo  # noqa: PLC0415 - optional: only PostgreSQL ledgers need psycopg
    except ImportError:
        return
    try:
        conninfo.conninfo_to_dict(text)
    except Exception as exc:
        # libpq's message may quote any piece of the password, not only the whole of it.
        detail = "libpq cannot parse it" if url_secrets(text) else scrub(str(exc).strip(), text)
        raise LedgerURLError(
            "ledger_url %r is malformed (%s); percent-encode special characters in the user and password "
            "(for example @ as %%40 and %% as %%25)" % (redact_url(text), detail)
        ) from None


def resolve_ledger_url(
    option: Optional[str],
    task_vars: Optional[Mapping[str, Any]] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> LedgerURL:
    """Pick the ledger URL from the option, the variable, the environment or the default."""
    env = os.environ if environ is None else environ
    variables = task_vars or {}
    for candidate in (option, variables.get(LEDGER_URL_VAR), env.get(LEDGER_URL_ENV)):
        if candidate not in (None, ""):
            return parse_ledger_url(str(candidate))
    return parse_ledger_url("sqlite:///" + default_ledger_path(env).lstrip("/"))

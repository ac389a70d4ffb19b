# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redaction of task arguments and results before they reach the trail or a sink.

Three layers, each replacing what it hides with a marker that says why:
``no_log`` hides a task's arguments and result entirely; a key whose name
matches a key pattern has its value hidden; a string value that contains a
recognisable secret (PEM block, bearer token, cloud access key, password in a
URL, ...) has that part hidden.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, Mapping, Optional, Pattern, Tuple

DEFAULT_KEY_PATTERNS: Tuple[str, ...] = (
    "passw(or)?d",
    "passphrase",
    "secret",
    "token",
    "private_?key",
    "api_?key",
    "access_?key",
    "credential",
    "authorization",
    "cookie",
    "session_?id",
    "client_?secret",
    "vault_?pass",
)

# Name -> pattern. Names appear in the marker, so an auditor sees what kind of value was hidden.
DEFAULT_VALUE_PATTERNS: Dict[str, str] = {
    "pem": r"-----BEGIN [A-Z0-9 ]+-----.*?(?:-----END [A-Z0-9 ]+-----|\Z)",
    "bearer": r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*",
    "basic_auth": r"(?i)\bbasic\s+[A-Za-z0-9+/]{8,}=*",
    "aws_access_key": r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{16}\b",
    "aws_secret_key": r"(?i)(?<=aws_secret_access_key)[\s=:\"']+[A-Za-z0-9/+=]{40}",
    "gcp_api_key": r"\bAIza[0-9A-Za-z\-_]{35}\b",
    "github_token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b",
    "slack_token": r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b",
    "jwt": r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    "url_password": r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)",
}

NO_LOG_MARKER = "[REDACTED no_log]"


def key_marker(key: str) -> str:
    return "[REDACTED key %s]" % key


def value_marker(name: str) -> str:
    return "[REDACTED %s]" % name


class Redactor:
    """Applies key and value patterns to any JSON-native structure."""

    def __init__(
        self,
        key_patterns: Iterable[str] = DEFAULT_KEY_PATTERNS,
        value_patterns: Optional[Mapping[str, str]] = None,
    ) -> None:
        keys = [pattern for pattern in key_patterns if pattern]
        self._key_pattern: Optional[Pattern[str]] = (
            re.compile("|".join("(?:%s)" % pattern for pattern in keys), re.IGNORECASE) if keys else None
        )
        patterns = dict(DEFAULT_VALUE_PATTERNS if value_patterns is None else value_patterns)
        self._value_patterns = [(name, re.compile(pattern, re.DOTALL)) for name, pattern in patterns.items()]
        self._key_cache: Dict[str, bool] = {}

    def is_secret_key(self, key: str) -> bool:
        """Return whether a key's name says its value is secret."""
        cached = self._key_cache.get(key)
        if cached is None:
            cached = bool(self._key_pattern and self._key_pattern.search(key))
            self._key_cache[key] = cached
        return cached

    def redact(self, value: Any) -> Any:
        """Return a copy of a JSON-native value with secret keys and values replaced by markers."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            return {key: self._redact_item(key, item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.redact(item) for item in value]
        return value

    def _redact_item(self, key: str, item: Any) -> Any:
        # A bool or an empty value reveals nothing, and keeps e.g. update_password: false readable.
        if item is None or isinstance(item, bool) or item in ("", [], {}):
            return item
        if self.is_secret_key(key):
            return key_marker(key)
        return self.redact(item)

    def redact_text(self, text: str) -> str:
        """Replace every recognisable secret inside a string."""
        for name, pattern in self._value_patterns:
            if pattern.search(text):
                text = pattern.sub(value_marker(name), text)
        return text


def validate_patterns(key_patterns: Iterable[str], value_patterns: Mapping[str, str]) -> None:
    """Raise ValueError naming the first pattern that does not compile."""
    for pattern in [*key_patterns, *value_patterns.values()]:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                "redaction pattern %r is not a valid regular expression (%s); fix or remove it" % (pattern, exc)
            ) from None

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small builder for ServiceNow encoded queries (``sysparm_query``).

Encoded queries join conditions with ``^`` (AND) and ``^OR`` (OR) and end
with ``ORDERBY<field>`` / ``ORDERBYDESC<field>`` terms. A caret inside a value
is written ``^^``. ``IN`` lists are comma separated and have no escape for a
comma, so such values are refused with a hint to use OR terms instead.
Source: ServiceNow docs, "Encoded query strings" and "Operators available for
filters and queries" (api-reference / platform-user-interface).
"""

from __future__ import annotations

import re
from typing import Iterable, List

from .errors import ITSMError

_FIELD = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


def escape_value(value: object) -> str:
    """Return a value as it may appear in an encoded query."""
    text = "" if value is None else str(value)
    if "\n" in text or "\r" in text:
        raise ITSMError("query value %r holds a line break, which encoded queries cannot carry; remove it" % text)
    return text.replace("^", "^^")


def _check_field(field: str) -> str:
    if not _FIELD.match(field):
        raise ITSMError(
            "query field %r is not a ServiceNow column name; use lower-case names such as short_description" % field
        )
    return field


class Query:
    """Conditions joined by AND, with OR alternatives and ordering; ``str()`` gives the encoded form."""

    def __init__(self) -> None:
        self._terms: List[str] = []
        self._order: List[str] = []

    def _add(self, term: str, joiner: str = "^") -> "Query":
        self._terms.append(term if not self._terms else joiner + term)
        return self

    def equals(self, field: str, value: object) -> "Query":
        return self._add("%s=%s" % (_check_field(field), escape_value(value)))

    def or_equals(self, field: str, value: object) -> "Query":
        return self._add("%s=%s" % (_check_field(field), escape_value(value)), joiner="^OR")

    def not_equals(self, field: str, value: object) -> "Query":
        return self._add("%s!=%s" % (_check_field(field), escape_value(value)))

    def is_in(self, field: str, values: Iterable[object]) -> "Query":
        items = [escape_value(value) for value in values]
        for item in items:
            if "," in item:
                raise ITSMError(
                    "IN value %r holds a comma, which IN lists cannot escape; query it with or_equals instead" % item
                )
        return self._add("%sIN%s" % (_check_field(field), ",".join(items)))

    def starts_with(self, field: str, value: object) -> "Query":
        return self._add("%sSTARTSWITH%s" % (_check_field(field), escape_value(value)))

    def like(self, field: str, value: object) -> "Query":
        return self._add("%sLIKE%s" % (_check_field(field), escape_value(value)))

    def is_empty(self, field: str) -> "Query":
        return self._add("%sISEMPTY" % _check_field(field))

    def raw(self, encoded: str) -> "Query":
        """Append a caller-written encoded query (already in ServiceNow syntax) as one AND term."""
        return self._add(encoded) if encoded else self

    def order_by(self, field: str, descending: bool = False) -> "Query":
        self._order.append("%s%s" % ("ORDERBYDESC" if descending else "ORDERBY", _check_field(field)))
        return self

    def __str__(self) -> str:
        parts = ["".join(self._terms)] if self._terms else []
        parts.extend(self._order)
        return "^".join(parts)

"""Encoded-query evaluation for the stand-in (ServiceNow docs, "Encoded query strings").

Supports ``=``, ``!=``, ``^`` (AND), ``^OR``, ``^NQ``, ``IN``, ``NOT IN``,
``STARTSWITH``, ``LIKE``, ``ISEMPTY``, ``ISNOTEMPTY``, ``ORDERBY`` and
``ORDERBYDESC``; ``^^`` is a literal caret.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Tuple

Record = Dict[str, Any]
_TERM = re.compile(r"^([a-z][a-z0-9_.]*?)(ISEMPTY|ISNOTEMPTY|STARTSWITH|NOT IN|IN|LIKE|!=|=)(.*)$", re.S)


class QueryError(ValueError):
    """The query cannot be parsed."""


def _split(encoded: str) -> List[Tuple[str, str]]:
    """Split on unescaped carets into (joiner, term) pairs; joiner is AND, OR or NQ."""
    pieces: List[Tuple[str, str]] = []
    joiner, current, index = "AND", [], 0
    while index < len(encoded):
        char = encoded[index]
        if char == "^" and encoded.startswith("^^", index):
            current.append("^")
            index += 2
            continue
        if char == "^":
            pieces.append((joiner, "".join(current)))
            current = []
            if encoded.startswith("^OR", index) and not encoded.startswith("^ORDERBY", index):
                joiner, index = "OR", index + 3
            elif encoded.startswith("^NQ", index):
                joiner, index = "NQ", index + 3
            else:
                joiner, index = "AND", index + 1
            continue
        current.append(char)
        index += 1
    pieces.append((joiner, "".join(current)))
    return [(j, t) for j, t in pieces if t]


def _condition(term: str) -> Callable[[Record], bool]:
    match = _TERM.match(term)
    if not match:
        raise QueryError(term)
    field, operator, value = match.groups()

    def read(record: Record) -> str:
        return "" if record.get(field) is None else str(record.get(field))

    if operator == "=":
        return lambda record: read(record) == value
    if operator == "!=":
        return lambda record: read(record) != value
    if operator == "IN":
        options = set(value.split(","))
        return lambda record: read(record) in options
    if operator == "NOT IN":
        excluded = set(value.split(","))
        return lambda record: read(record) not in excluded
    if operator == "STARTSWITH":
        return lambda record: read(record).startswith(value)
    if operator == "LIKE":
        return lambda record: value.lower() in read(record).lower()
    if operator == "ISEMPTY":
        return lambda record: read(record) == ""
    return lambda record: read(record) != ""


def compile_query(encoded: str) -> Tuple[Callable[[Record], bool], List[Tuple[str, bool]]]:
    """Return a predicate and the ordering [(field, descending)] of an encoded query."""
    order: List[Tuple[str, bool]] = []
    groups: List[List[List[Callable[[Record], bool]]]] = [[]]
    for joiner, term in _split(encoded or ""):
        if term.startswith("ORDERBYDESC"):
            order.append((term[len("ORDERBYDESC") :], True))
            continue
        if term.startswith("ORDERBY"):
            order.append((term[len("ORDERBY") :], False))
            continue
        condition = _condition(term)
        if joiner == "NQ":
            groups.append([[condition]])
        elif joiner == "OR" and groups[-1]:
            groups[-1][-1].append(condition)
        else:
            groups[-1].append([condition])

    def matches(record: Record) -> bool:
        return any(all(any(alt(record) for alt in ors) for ors in ands) for ands in groups)

    return matches, order

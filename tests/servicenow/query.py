"""Encoded-query evaluation for the stand-in (ServiceNow docs, "Encoded query strings").

Supports ``=``, ``!=``, ``^`` (AND), ``^OR``, ``^NQ``, ``IN``, ``NOT IN``,
``STARTSWITH``, ``ENDSWITH``, ``LIKE``, ``NOT LIKE``, ``<``, ``>``, ``<=``, ``>=``,
``BETWEEN`` (``low@high``, both ends included), ``ISEMPTY``, ``ISNOTEMPTY``,
``ORDERBY`` and ``ORDERBYDESC``; ``^^`` is a literal caret ("Operators available
for filters and queries"). Comparisons are numeric when both sides are numbers,
otherwise on the text, which orders the Table API's ``YYYY-MM-DD HH:MM:SS``
date-times right; ``javascript:gs.dateGenerate('date','time')`` (or with one
``"date time"`` argument) reads as that date-time. A term on a field the table
does not have is dropped, as the Table API documents for sysparm_query ("the
instance ignores the invalid part").
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Tuple

Record = Dict[str, Any]
_TERM = re.compile(
    r"^([a-z][a-z0-9_.]*?)(ISEMPTY|ISNOTEMPTY|STARTSWITH|ENDSWITH|NOT LIKE|NOT IN|BETWEEN|IN|LIKE|!=|<=|>=|<|>|=)(.*)$",
    re.S,
)
_DATE_GENERATE = re.compile(r"""^javascript:gs\.dateGenerate\(\s*['"]([^'"]*)['"](?:\s*,\s*['"]([^'"]*)['"])?\s*\)$""")
_ORDERING: Dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


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


def _literal(text: str) -> str:
    generated = _DATE_GENERATE.match(text.strip())
    return " ".join(part for part in generated.groups() if part) if generated else text


def _comparable(left: str, right: str) -> Tuple[Any, Any]:
    """Numbers compare as numbers, everything else as text."""
    try:
        return float(left), float(right)
    except ValueError:
        return left, right


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
    if operator == "ENDSWITH":
        return lambda record: read(record).endswith(value)
    if operator == "LIKE":
        return lambda record: value.lower() in read(record).lower()
    if operator == "NOT LIKE":
        return lambda record: value.lower() not in read(record).lower()
    if operator in _ORDERING or operator == "BETWEEN":
        return _range(term, operator, value, read)
    if operator == "ISEMPTY":
        return lambda record: read(record) == ""
    return lambda record: read(record) != ""


def _range(term: str, operator: str, value: str, read: Callable[[Record], str]) -> Callable[[Record], bool]:
    """``<``, ``>``, ``<=``, ``>=`` and ``BETWEEN low@high``; an empty field matches none of them."""
    if operator == "BETWEEN":
        low, separator, high = value.partition("@")
        if not separator:
            raise QueryError(term)
        bounds = [(">=", _literal(low)), ("<=", _literal(high))]
    else:
        bounds = [(operator, _literal(value))]
    return lambda record: (
        read(record) != "" and all(_ORDERING[op](*_comparable(read(record), bound)) for op, bound in bounds)
    )


def _field(term: str) -> str:
    match = _TERM.match(term)
    return match.group(1).split(".")[0] if match else ""


def compile_query(
    encoded: str, known: Optional[Callable[[str], bool]] = None
) -> Tuple[Callable[[Record], bool], List[Tuple[str, bool]]]:
    """Return a predicate and the ordering [(field, descending)] of an encoded query.

    With ``known``, terms and orderings on fields it refuses are left out.
    """
    order: List[Tuple[str, bool]] = []
    groups: List[List[List[Callable[[Record], bool]]]] = [[]]
    for joiner, term in _split(encoded or ""):
        if term.startswith("ORDERBY"):
            descending = term.startswith("ORDERBYDESC")
            column = term[len("ORDERBYDESC" if descending else "ORDERBY") :]
            if known is None or known(column):
                order.append((column, descending))
            continue
        if known is not None and not known(_field(term)):
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

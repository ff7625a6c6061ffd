"""Tracker conditions in Django's language, compiled to SQL text.

    Q(new__status="paid")                         NEW."status" = 'paid'
    Q(old__status__df=F("new__status"))           OLD."status" IS DISTINCT FROM NEW."status"
    Changed("status", "total")                    the same for each field, joined by OR
    ~Q(new__note__startswith="draft") & Q(new__total__gte=10)

A key is ``old__<field>`` or ``new__<field>`` followed by an optional lookup;
``F("old__<field>")`` / ``F("new__<field>")`` refer to the other row. Field
names become their columns, quoted as identifiers; values become SQL
literals (strings quoted, backslashes escaped, NUL refused); the text is
what the migration's ``TrackModel`` holds and what the extension's own
condition compiler then checks. A condition that is already SQL text is
returned as it is.
"""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import F, Q

_ROWS = {"old": "OLD", "new": "NEW"}


class ConditionError(ValueError):
    """A Q condition that cannot be compiled to SQL (raised at makemigrations time)."""


def quote_identifier(name: str) -> str:
    """A column name as a PostgreSQL identifier (always quoted)."""
    if "\x00" in name:
        raise ConditionError(f"an identifier cannot contain NUL: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A string as a PostgreSQL literal, right whatever standard_conforming_strings
    says (PostgreSQL's own quote_literal() does the same)."""
    if "\x00" in value:
        raise ConditionError(f"PostgreSQL text cannot contain NUL (\\x00): {value!r}")
    quoted = "'" + value.replace("'", "''") + "'"
    if "\\" in value:
        return "E" + quoted.replace("\\", "\\\\")
    return quoted


def literal(value: Any) -> str:
    """A Python value as SQL: numbers and booleans as they are, everything
    else (text, dates, times, decimals, UUIDs) as a quoted literal whose type
    PostgreSQL takes from the column it is compared with."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return quote_literal(repr(value).replace("inf", "Infinity").replace("nan", "NaN"))
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return quote_literal(str(value))
    if isinstance(value, (str, datetime.date, datetime.time, uuid.UUID)):
        return quote_literal(value.isoformat() if isinstance(value, (datetime.date, datetime.time)) else str(value))
    if isinstance(value, datetime.timedelta):
        return quote_literal(f"{value.days} days {value.seconds} seconds {value.microseconds} microseconds")
    raise ConditionError(
        f"cannot write {type(value).__name__} value {value!r} as SQL in a condition; "
        "use a string, a number, a boolean, None, a date/time, a Decimal or a UUID"
    )


def _like(value: Any, prefix: str, suffix: str) -> str:
    if not isinstance(value, str):
        raise ConditionError(f"a pattern lookup takes a string, not {value!r}")
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return quote_literal(prefix + escaped + suffix)


def _compare(operator: str) -> Callable[[str, Any, str], str]:
    def build(column: str, value: Any, sql: str) -> str:
        return f"{column} {operator} {sql}"

    return build


def _exact(column: str, value: Any, sql: str) -> str:
    return f"{column} IS NULL" if value is None else f"{column} = {sql}"


def _iexact(column: str, value: Any, sql: str) -> str:
    return f"{column} IS NULL" if value is None else f"lower({column}) = lower({sql})"


def _isnull(column: str, value: Any, sql: str) -> str:
    if not isinstance(value, bool):
        raise ConditionError(f"isnull takes True or False, not {value!r}")
    return f"{column} IS NULL" if value else f"{column} IS NOT NULL"


def _pattern(operator: str, prefix: str, suffix: str, lower: bool = False) -> Callable[[str, Any, str], str]:
    def build(column: str, value: Any, sql: str) -> str:
        if isinstance(value, F):
            raise ConditionError("a pattern lookup takes a string, not an F() reference")
        return f"{column} {operator} {_like(value, prefix, suffix)}"

    return build


#: lookup -> builder(column SQL, Python value, value SQL)
LOOKUPS: dict[str, Callable[[str, Any, str], str]] = {
    "exact": _exact,
    "iexact": _iexact,
    "ne": _compare("<>"),
    "df": _compare("IS DISTINCT FROM"),
    "nd": _compare("IS NOT DISTINCT FROM"),
    "gt": _compare(">"),
    "gte": _compare(">="),
    "lt": _compare("<"),
    "lte": _compare("<="),
    "isnull": _isnull,
    "startswith": _pattern("LIKE", "", "%"),
    "endswith": _pattern("LIKE", "%", ""),
    "contains": _pattern("LIKE", "%", "%"),
    "istartswith": _pattern("ILIKE", "", "%"),
    "iendswith": _pattern("ILIKE", "%", ""),
    "icontains": _pattern("ILIKE", "%", "%"),
}
SUPPORTED = (*LOOKUPS, "in")


class _Compiler:
    def __init__(self, model: type[models.Model]) -> None:
        self.model = model

    def column(self, reference: str, where: str) -> str:
        """``old__status`` -> ``OLD."status"``."""
        row, sep, name = reference.partition("__")
        if not sep or row not in _ROWS or not name:
            raise ConditionError(
                f"{where} {reference!r} must name old__<field> or new__<field> "
                f"(the row before or after the write) of {self.model._meta.label}"
            )
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            raise ConditionError(f"{where} {reference!r}: {self.model._meta.label} has no field {name!r}") from None
        column = getattr(field, "column", None)
        if not column or not getattr(field, "concrete", False):
            raise ConditionError(f"{where} {reference!r}: field {name!r} of {self.model._meta.label} has no column")
        return f"{_ROWS[row]}.{quote_identifier(column)}"

    def value(self, value: Any) -> str:
        if isinstance(value, F):
            return self.column(value.name, "F()")
        if hasattr(value, "resolve_expression"):
            raise ConditionError(f"only F('old__<field>') / F('new__<field>') expressions are supported, not {value!r}")
        return literal(value)

    def lookup(self, key: str, value: Any) -> str:
        parts = key.split("__")
        if len(parts) <= 2:
            reference, lookup = key, "exact"
        elif len(parts) == 3:
            reference, lookup = "__".join(parts[:2]), parts[2]
        else:
            raise ConditionError(
                f"condition key {key!r}: write old__<field>__<lookup> or new__<field>__<lookup> "
                "(related fields cannot be followed in a trigger condition)"
            )
        column = self.column(reference, "condition key")
        if lookup == "in":
            if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
                raise ConditionError(f"{key!r} takes a list of values, not {value!r}")
            values = list(value)
            if not values:
                return "FALSE"
            # Not "IN (...)": PostgreSQL turns that into "= ANY (ARRAY[...])" with
            # casts its own parser does not read back the same way for every
            # type, and the extension refuses such a condition.
            if len(values) == 1:
                return f"{column} = {self.value(values[0])}"
            return " OR ".join(f"{column} = {self.value(v)}" for v in values)  # parenthesised by node()
        build = LOOKUPS.get(lookup)
        if build is None:
            raise ConditionError(
                f"condition key {key!r}: lookup {lookup!r} is not supported in a tracker condition; "
                f"supported: {', '.join(SUPPORTED)}"
            )
        return build(column, value, self.value(value) if lookup not in ("isnull",) else "")

    def node(self, q: Q) -> str:
        if q.connector not in (Q.AND, Q.OR):
            raise ConditionError(f"the {q.connector} connector is not supported in a tracker condition (use & and |)")
        parts = []
        for child in q.children:
            if isinstance(child, Q):
                parts.append(self.node(child))
            elif isinstance(child, tuple) and len(child) == 2:
                parts.append(self.lookup(child[0], child[1]))
            else:
                raise ConditionError(f"unsupported condition element {child!r}")
        if not parts:
            raise ConditionError("an empty Q() is not a condition")
        text = parts[0] if len(parts) == 1 else f" {q.connector} ".join(f"({p})" for p in parts)
        return f"NOT ({text})" if q.negated else text


def compile_condition(model: type[models.Model], condition: str | Q | None) -> str | None:
    """A tracker condition as SQL text (SQL text and None are returned as they are)."""
    if condition is None or isinstance(condition, str):
        return condition
    if not isinstance(condition, Q):
        raise ConditionError(f"a condition is SQL text or a Q object, not {type(condition).__name__}")
    return _Compiler(model).node(condition)


def Changed(*fields: str) -> Q:  # noqa: N802  (reads like pghistory's condition classes)
    """True when any of these fields changed: ``OLD.f IS DISTINCT FROM NEW.f`` joined by OR."""
    if not fields:
        raise ConditionError(
            "Changed() takes at least one field name (the tracker's changed= option watches a list too)"
        )
    q = Q()
    for name in fields:
        q |= Q(**{f"old__{name}__df": F(f"new__{name}")})
    return q


__all__ = [
    "SUPPORTED",
    "Changed",
    "ConditionError",
    "compile_condition",
    "literal",
    "quote_identifier",
    "quote_literal",
]

"""Trackers in Django's migration state.

A model state's option ``history_track`` holds its trackers: a tuple of
``TrackerState`` in the states migrations build (``TrackModel.state_forwards``
adds one, ``UntrackModel.state_forwards`` takes it away), a ``Declared`` in the
state Django builds from the models (set by ``track()``). The autodetector
(history_track.django.autodetector) compares the two. The option name is
added to Django's Meta option names (as django-pgtrigger does for
``triggers``) so that model states carrying it can be rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import django.db.migrations.state
import django.db.models.options
from django.db import models

if TYPE_CHECKING:
    from .tracking import Tracker

OPTION = "history_track"

if OPTION not in django.db.models.options.DEFAULT_NAMES:
    django.db.models.options.DEFAULT_NAMES = (*django.db.models.options.DEFAULT_NAMES, OPTION)
if OPTION not in django.db.migrations.state.DEFAULT_NAMES:  # imported by name there
    django.db.migrations.state.DEFAULT_NAMES = (*django.db.migrations.state.DEFAULT_NAMES, OPTION)

_DEFAULT_LABELS = ("insert", "update", "delete")


def labels_of(label: str | None, operations: tuple[str, ...] | None) -> frozenset[str]:
    """The labels of the trackers one track_table() call creates: its label,
    or one default tracker per operation."""
    if label is not None:
        return frozenset([label])
    if operations is None:
        return frozenset(_DEFAULT_LABELS)
    return frozenset(op.lower() for op in operations)


@dataclass(frozen=True)
class TrackerState:
    """One tracker as a migration declares it: TrackModel's options, the
    condition as SQL text. ``declared`` says makemigrations wrote it (from
    ``track()``); a hand-written TrackModel's tracker is not ``declared``."""

    label: str | None = None
    operations: tuple[str, ...] | None = None
    condition: str | None = None
    changed: tuple[str, ...] | None = None
    snapshot: str | None = None
    columns: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    baseline: bool = field(default=False, compare=False)
    declared: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "operations", normalize_operations(self.operations))

    @property
    def labels(self) -> frozenset[str]:
        """The labels of the trackers track_table() creates for it."""
        return labels_of(self.label, self.operations)

    def options(self) -> dict[str, Any]:
        """TrackModel's keyword arguments."""
        out: dict[str, Any] = {}
        for name in ("label", "operations", "condition", "changed", "snapshot", "columns", "exclude"):
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        if self.baseline:
            out["baseline"] = True
        return out


@dataclass(frozen=True)
class Declared:
    """A decorated model's trackers in the state built from the models;
    conditions are compiled when the autodetector asks (so an unsupported
    lookup fails at makemigrations time)."""

    model: type[models.Model]
    trackers: tuple[Tracker, ...]

    def compile(self) -> tuple[TrackerState, ...]:
        from .conditions import compile_condition

        return tuple(
            TrackerState(
                label=t.label,
                operations=t.operations,
                condition=compile_condition(self.model, t.condition),
                changed=t.changed,
                snapshot=t.snapshot,
                columns=t.columns,
                exclude=t.exclude,
                baseline=t.baseline,
                declared=True,
            )
            for t in self.trackers
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> Declared:
        return self  # immutable; holds a model class


def declare(model: type[models.Model], trackers: tuple[Tracker, ...]) -> None:
    """Put a decorated model's trackers where ModelState.from_model finds them."""
    value = Declared(model, trackers)
    setattr(model._meta, OPTION, value)
    model._meta.original_attrs[OPTION] = value


def trackers_in(options: dict[str, Any]) -> tuple[TrackerState, ...] | None:
    """The trackers a model state's options hold (None: not decorated, no
    TrackModel)."""
    value = options.get(OPTION)
    if value is None:
        return None
    if isinstance(value, Declared):
        return value.compile()
    return tuple(value)


def _order(operation: str) -> tuple[int, str]:
    known = (*_DEFAULT_LABELS, "truncate")
    return (known.index(operation), "") if operation in known else (len(known), operation)


def normalize_operations(operations: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Lower case, each once, in insert/update/delete order (so the same
    trackers compare equal however they were spelled)."""
    if operations is None:
        return None
    return tuple(sorted({op.lower() for op in operations}, key=_order))


def _current(state: Any, key: tuple[str, str]) -> tuple[TrackerState, ...] | None:
    model_state = state.models.get(key)
    if model_state is None:
        return None
    value = model_state.options.get(OPTION)
    return tuple(value) if isinstance(value, tuple) else ()


def remove(state: Any, key: tuple[str, str], labels: frozenset[str]) -> None:
    """Take these tracker labels out of a model state (UntrackModel, and a
    TrackModel that replaces a label)."""
    current = _current(state, key)
    if current is None:
        return
    kept = []
    for tracker in current:
        if not tracker.labels & labels:
            kept.append(tracker)
        elif tracker.label is None and tracker.labels - labels:
            # Some of the default trackers stay.
            rest = tuple(sorted(tracker.labels - labels, key=_order))
            kept.append(replace(tracker, operations=rest))
    _set(state, key, tuple(kept))


def add(state: Any, key: tuple[str, str], tracker: TrackerState) -> None:
    """Record a tracker in a model state (TrackModel)."""
    if key not in state.models:
        return
    remove(state, key, tracker.labels)
    _set(state, key, (*(_current(state, key) or ()), tracker))


def _set(state: Any, key: tuple[str, str], trackers: tuple[TrackerState, ...]) -> None:
    options = state.models[key].options
    if trackers:
        options[OPTION] = trackers
    else:
        options.pop(OPTION, None)

"""Tracking declared on the model: ``@history_track.django.track(...)``.

    from django.db.models import F, Q
    import history_track.django as ht

    @ht.track()                                   # the default trackers: insert, update, delete
    class Customer(models.Model): ...

    @ht.track(
        ht.Tracker(),                             # the default trackers, as above
        ht.Tracker("paid", operations=["update"], condition=ht.Changed("status") & Q(new__status="paid")),
    )
    class Order(models.Model): ...

The trackers take ``TrackModel``'s options. ``makemigrations`` (the
``history_track.django`` app overrides it) compares the declared trackers with
the ones the migrations already track and writes ``TrackModel`` /
``UntrackModel`` operations, with conditions compiled to SQL text
(history_track.django.conditions). Declaring a model also declares its event
model (history_track.django.models.declare_event_model) unless
``event_model=False``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import models
from django.db.models import Q

from . import _state

M = TypeVar("M", bound=type[models.Model])

#: The trackers of every decorated model, in declaration order.
_registry: dict[type[models.Model], tuple[Tracker, ...]] = {}


def _names(value: Sequence[str] | None, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError(f"{what} takes a list of names, not the string {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class Tracker:
    """One tracker: one ``track_table()`` call (one ``TrackModel`` operation).

    ``label=None`` declares the default trackers (one per operation, labelled
    insert/update/delete); ``changed``, ``columns`` and ``exclude`` take field
    names; ``condition`` is SQL text or a Q object over ``old__<field>`` /
    ``new__<field>`` (see history_track.django.conditions). ``baseline`` only
    matters when the tracker is first written (a TrackModel option that
    records the current rows); changing it alone writes no operation.
    """

    label: str | None = None
    operations: tuple[str, ...] | None = None
    condition: str | Q | None = None
    changed: tuple[str, ...] | None = None
    snapshot: str | None = None
    columns: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    baseline: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("operations", "changed", "columns", "exclude"):
            object.__setattr__(self, name, _names(getattr(self, name), name))
        if self.condition is not None and not isinstance(self.condition, (str, Q)):
            raise TypeError(f"condition must be SQL text or a Q object, not {type(self.condition).__name__}")


def track(
    *trackers: Tracker,
    event_model: bool = True,
    event_model_name: str | None = None,
    **default_tracker_options: Any,
) -> Callable[[M], M]:
    """Declare a model's trackers; ``makemigrations`` writes the operations.

    ``track()`` declares the default trackers; ``track(label=..., condition=...)``
    one tracker with those options; ``track(Tracker(...), Tracker(...))``
    several. ``event_model=False`` declares no event model;
    ``event_model_name`` names it (default ``<Model>Event``).
    """
    if trackers and default_tracker_options:
        raise TypeError("track() takes Tracker objects or one tracker's options, not both")
    declared = trackers or (Tracker(**default_tracker_options),)
    for tracker in declared:
        if not isinstance(tracker, Tracker):
            raise TypeError(f"track() takes Tracker objects, not {tracker!r}")
    _check_labels(declared)

    def decorate(model: M) -> M:
        if not (isinstance(model, type) and issubclass(model, models.Model)):
            raise TypeError(f"track() decorates a model class, not {model!r}")
        if model._meta.abstract or model._meta.proxy:
            raise TypeError(f"track() needs a concrete model; {model.__qualname__} is abstract or a proxy")
        # Stacked decorators add up, the top one's trackers first.
        combined = (*declared, *_registry.get(model, ()))
        _check_labels(combined)
        _registry[model] = combined
        _state.declare(model, combined)
        if event_model:
            from . import models as event_models

            declare = getattr(event_models, "declare_event_model", None)
            if declare is not None:
                if event_model_name is not None:
                    declare(model, tuple(declared), name=event_model_name)
                else:
                    declare(model, tuple(declared))
        return model

    return decorate


def _check_labels(trackers: Sequence[Tracker]) -> None:
    """Refuse two trackers that would create the same label (``Tracker()``
    creates insert, update and delete)."""
    seen: set[str] = set()
    twice: set[str] = set()
    for tracker in trackers:
        labels = _state.labels_of(tracker.label, tracker.operations)
        twice |= seen & labels
        seen |= labels
    if twice:
        raise ValueError(
            f"track() declares the tracker label(s) {', '.join(sorted(twice))} twice "
            "(Tracker() is the insert, update and delete trackers; give the others their own labels)"
        )


def trackers_of(model: type[models.Model]) -> tuple[Tracker, ...]:
    """The trackers ``track()`` declared on this model (not inherited); () when none."""
    return _registry.get(model, ())


def tracked_models() -> dict[type[models.Model], tuple[Tracker, ...]]:
    """Every model ``track()`` declared, with its trackers."""
    return dict(_registry)


__all__ = ["Tracker", "track", "tracked_models", "trackers_of"]

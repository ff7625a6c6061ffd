"""makemigrations writes the tracking ``track()`` declares.

``AutodetectorMixin`` is mixed into the autodetector of Django's
``makemigrations`` and ``migrate`` commands when the history_track app is
ready (django-pgtrigger patches the same attribute; the mixin composes with
whatever autodetector is already there). Before Django compares the two
states it takes the trackers out of both (so ``CreateModel`` never carries
them) and drops event models (classes with ``is_history_track_event = True``:
their tables belong to the extension). After Django's own operations it
compares, per model:

* the trackers the migrations hold (``TrackModel.state_forwards`` records
  every one, hand-written or generated; generated ones say ``declared=True``);
* the trackers ``track()`` declares, conditions compiled to SQL text.

A declared tracker the migrations lack gets a ``TrackModel``; a tracker whose
options changed gets ``UntrackModel`` (old options) then ``TrackModel`` (new):
untracking keeps the event table and its history, tracking again appends to
it. When the decorator is gone, the trackers makemigrations wrote get
``UntrackModel``. Trackers written by hand in a migration are left alone
unless a declared tracker takes their label.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.core.management.base import CommandError

from . import _state
from .conditions import ConditionError
from .operations import TrackModel, UntrackModel

try:  # Django >= 5.1
    from django.db.migrations.autodetector import OperationDependency

    def _created(app_label: str, model_name: str) -> Any:
        return OperationDependency(app_label, model_name, None, OperationDependency.Type.CREATE)

except ImportError:  # pragma: no cover - Django 4.2, 5.0: (app, model, field, created)

    def _created(app_label: str, model_name: str) -> Any:
        return (app_label, model_name, None, True)


State = dict[tuple[str, str], tuple[_state.TrackerState, ...] | None]


def _is_event_model(app_label: str, model_name: str) -> bool:
    model = global_apps.all_models.get(app_label, {}).get(model_name)
    return model is not None and getattr(model, "is_history_track_event", False) is True


def _take_trackers(state: Any, *, drop: set[tuple[str, str]]) -> State:
    """Remove the trackers (and the event models in ``drop``) from a project state."""
    out: State = {}
    for key in list(state.models):
        if key in drop:
            del state.models[key]
            continue
        options = state.models[key].options
        if _state.OPTION in options:
            try:
                out[key] = _state.trackers_in(options)
            except ConditionError as exc:
                # One line from the command, naming the model.
                raise CommandError(f"@track on {key[0]}.{state.models[key].name}: {exc}") from exc
            del options[_state.OPTION]
    return out


def diff(
    old: tuple[_state.TrackerState, ...], new: tuple[_state.TrackerState, ...] | None
) -> tuple[list[_state.TrackerState], list[_state.TrackerState]]:
    """(trackers to untrack, trackers to track) to go from old to new
    (new None: the model declares nothing)."""
    if new is None:
        return [tracker for tracker in old if tracker.declared], []
    unmatched = list(old)
    added = []
    for tracker in new:
        if tracker in unmatched:  # equal options (declared/baseline aside)
            unmatched.remove(tracker)
        else:
            added.append(tracker)
    taken = frozenset().union(*(tracker.labels for tracker in added))
    removed = [tracker for tracker in unmatched if tracker.declared or tracker.labels & taken]
    return removed, added


class AutodetectorMixin:
    """Mixed into MigrationAutodetector (see the module docstring)."""

    from_state: Any
    to_state: Any
    new_model_keys: set[tuple[str, str]]
    renamed_models: dict[tuple[str, str], str]
    add_operation: Any

    def __init__(self, from_state: Any, to_state: Any, questioner: Any = None) -> None:
        super().__init__(from_state, to_state, questioner)  # type: ignore[call-arg]
        events = {key for key in to_state.models if _is_event_model(*key)}
        self._history_track_old = _take_trackers(from_state, drop=events)
        self._history_track_new = _take_trackers(to_state, drop=events)

    def generate_altered_db_table(self) -> None:
        super().generate_altered_db_table()  # type: ignore[misc]  # Django's last generate_* step
        untracks: dict[str, list[UntrackModel]] = {}
        extension = _created("history_track", "__first__")
        for key in sorted(self.new_model_keys):
            app_label, model_name = key
            old_key = (app_label, self.renamed_models.get(key, model_name))
            removed, added = diff(self._history_track_old.get(old_key) or (), self._history_track_new.get(key))
            for tracker in removed:
                options = tracker.options()
                options.pop("baseline", None)
                # The model as the migration finds it (before a RenameModel).
                old_model = f"{app_label}.{self.from_state.models[old_key].name}"
                untracks.setdefault(app_label, []).append(UntrackModel(old_model, **options))
            model = f"{app_label}.{self.to_state.models[key].name}"
            created = _created(app_label, model_name)
            for tracker in added:
                self.add_operation(
                    app_label, TrackModel(model, declared=True, **tracker.options()), dependencies=[created, extension]
                )
        # Untracking comes first in the migration, before the fields it names
        # are renamed or removed (so that reversing it tracks a table that has
        # them); tracking comes last.
        for app_label, operations in untracks.items():
            for operation in reversed(operations):
                self.add_operation(app_label, operation, beginning=True)


def install() -> None:
    """Mix AutodetectorMixin into the makemigrations and migrate commands'
    autodetectors (once)."""
    from django.core.management.commands import makemigrations, migrate

    if hasattr(makemigrations.Command, "autodetector"):  # Django >= 5.2
        current = makemigrations.Command.autodetector
        if not issubclass(current, AutodetectorMixin):
            current = type(f"HistoryTrack{current.__name__}", (AutodetectorMixin, current), {})
        # One class for both: Django's check commands.E001 wants the same autodetector.
        makemigrations.Command.autodetector = migrate.Command.autodetector = current
    else:  # pragma: no cover - older Django: the commands use the name they imported
        current = makemigrations.MigrationAutodetector
        if not issubclass(current, AutodetectorMixin):
            current = type(f"HistoryTrack{current.__name__}", (AutodetectorMixin, current), {})
        makemigrations.MigrationAutodetector = migrate.MigrationAutodetector = current

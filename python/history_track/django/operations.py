"""Migration operations: tracking declared in version control, applied by ``migrate``.

    from history_track.django.operations import TrackModel

    class Migration(migrations.Migration):
        dependencies = [("shop", "0001_initial"), ("history_track", "0001_initial")]
        operations = [
            TrackModel("shop.Order"),
            TrackModel("shop.Order", label="paid", condition="OLD.status <> 'paid' AND NEW.status = 'paid'"),
        ]

The options are track_table()'s. ``changed``, ``columns`` and ``exclude``
take field names (or column names). Reversing a TrackModel removes the
trackers it declared and keeps the event table and its history; tracking the
table again appends to it. Later migrations that alter the table keep working:
the extension's event triggers follow ALTER TABLE.

Each operation records its tracker in the model's migration state (option
``history_track``), so ``makemigrations`` knows what the migrations track and
writes only what ``@track(...)`` on the model adds, changes or drops (see
history_track.django.tracking); the operations it writes say
``declared=True``. A condition here is SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.migrations.operations.base import Operation

from ..api import api_schema, track_table_query, untrack_table_query
from . import _state

_DEFAULT_LABELS = ("insert", "update", "delete")


def _columns(model: type[models.Model], names: Sequence[str] | None) -> list[str] | None:
    if names is None:
        return None
    out = []
    for name in names:
        try:
            out.append(model._meta.get_field(name).column)
        except FieldDoesNotExist:
            out.append(name)  # a column name
    return out


try:  # Django >= 5.1: the sign makemigrations prints before describe()
    from django.db.migrations.operations.base import OperationCategory

    _ADDITION: Any = OperationCategory.ADDITION
    _REMOVAL: Any = OperationCategory.REMOVAL
except ImportError:  # pragma: no cover
    _ADDITION = _REMOVAL = None


class TrackModel(Operation):
    """SELECT track_table(...) for a model's table; reversible."""

    category = _ADDITION
    reversible = True
    reduces_to_sql = True
    option_names = (
        "label",
        "operations",
        "condition",
        "changed",
        "snapshot",
        "columns",
        "exclude",
        "baseline",
        "declared",
    )

    def __init__(
        self,
        model: str,
        *,
        label: str | None = None,
        operations: Sequence[str] | None = None,
        condition: str | None = None,
        changed: Sequence[str] | None = None,
        snapshot: str | None = None,
        columns: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        baseline: bool = False,
        declared: bool = False,
    ) -> None:
        if model.count(".") != 1:
            raise ValueError(f"model must be 'app_label.ModelName', not {model!r}")
        if condition is not None and not isinstance(condition, str):
            raise TypeError(
                "TrackModel's condition is SQL text; a Q condition is compiled by makemigrations from "
                "@track(...) (or by hand: history_track.django.conditions.compile_condition(Model, q))"
            )
        self.model = model
        self.label = label
        self.operations = list(operations) if operations is not None else None
        self.condition = condition
        self.changed = list(changed) if changed is not None else None
        self.snapshot = snapshot
        self.columns = list(columns) if columns is not None else None
        self.exclude = list(exclude) if exclude is not None else None
        self.baseline = baseline
        self.declared = declared  # written by makemigrations from @track(...)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs = {name: getattr(self, name) for name in self.option_names if getattr(self, name) not in (None, False)}
        return self.__class__.__qualname__, [self.model], kwargs

    def tracker_state(self) -> _state.TrackerState:
        def names(value: list[str] | None) -> tuple[str, ...] | None:
            return tuple(value) if value is not None else None

        return _state.TrackerState(
            label=self.label,
            operations=names(self.operations),
            condition=self.condition,
            changed=names(self.changed),
            snapshot=self.snapshot,
            columns=names(self.columns),
            exclude=names(self.exclude),
            baseline=self.baseline,
            declared=self.declared,
        )

    def _state_key(self) -> tuple[str, str]:
        app, name = self.model.split(".")
        return app, name.lower()

    def state_forwards(self, app_label: str, state: Any) -> None:
        # The model state records the trackers (the table is unchanged), so
        # makemigrations knows what the migrations already track.
        _state.add(state, self._state_key(), self.tracker_state())

    def references_model(self, name: str, app_label: str) -> bool:
        app, model = self._state_key()
        return app == app_label and model == name.lower()

    def _resolve(self, state: Any, schema_editor: Any) -> tuple[type[models.Model], str] | None:
        app, name = self.model.split(".")
        model = state.apps.get_model(app, name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return None
        return model, schema_editor.quote_name(model._meta.db_table)

    def _track(self, schema_editor: Any, state: Any) -> None:
        resolved = self._resolve(state, schema_editor)
        if resolved is None:
            return
        model, table = resolved
        schema_editor.execute(
            *track_table_query(
                api_schema(schema_editor.connection),
                table,
                label=self.label,
                operations=self.operations,
                condition=self.condition,
                changed=_columns(model, self.changed),
                snapshot=self.snapshot,
                columns=_columns(model, self.columns),
                exclude=_columns(model, self.exclude),
                baseline=self.baseline,
            )
        )

    def _untrack(self, schema_editor: Any, state: Any) -> None:
        resolved = self._resolve(state, schema_editor)
        if resolved is None:
            return
        _model, table = resolved
        # Remove exactly the trackers this operation declared: its label, or
        # the default trackers of its operations (another TrackModel's
        # labeled trackers stay).
        labels = (
            [self.label]
            if self.label is not None
            else [op for op in _DEFAULT_LABELS if self.operations is None or op in {o.lower() for o in self.operations}]
        )
        for label in labels:
            schema_editor.execute(*untrack_table_query(api_schema(schema_editor.connection), table, label=label))

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        self._track(schema_editor, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        self._untrack(schema_editor, from_state)

    def describe(self) -> str:
        what = f"tracker {self.label!r}" if self.label else "history"
        return f"Track {what} of {self.model}"

    @property
    def migration_name_fragment(self) -> str:
        name = self.model.split(".")[1].lower()
        return f"track_{name}" + (f"_{self.label}" if self.label else "")


class UntrackModel(TrackModel):
    """SELECT untrack_table(...) for the trackers the same options declared
    (the history is kept); reversing it tracks the model again with them."""

    category = _REMOVAL

    def state_forwards(self, app_label: str, state: Any) -> None:
        _state.remove(state, self._state_key(), self.tracker_state().labels)

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        self._untrack(schema_editor, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        self._track(schema_editor, to_state)

    def describe(self) -> str:
        what = f"tracker {self.label!r}" if self.label else "history"
        return f"Stop tracking {what} of {self.model}"

    @property
    def migration_name_fragment(self) -> str:
        return "un" + super().migration_name_fragment


__all__ = ["TrackModel", "UntrackModel"]

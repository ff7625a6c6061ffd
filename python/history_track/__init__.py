"""history_track: row history for PostgreSQL, recorded by triggers.

The SQL extension does the work; this package installs it, wraps its API,
renders history in the terminal and runs temporary servers for tests.
"""

from ._resources import version as _extension_version
from .api import (
    ContextEvent,
    Event,
    Tracker,
    as_of,
    context_events,
    history,
    record_event,
    revert_row,
    revert_table,
    track_table,
    trackers,
    untrack_table,
)
from .context import ContextEncoder, context
from .install import create_extension, install_files
from .server import TemporaryServer

__version__ = _extension_version()

__all__ = [
    "ContextEncoder",
    "ContextEvent",
    "Event",
    "TemporaryServer",
    "Tracker",
    "__version__",
    "as_of",
    "context",
    "context_events",
    "create_extension",
    "history",
    "install_files",
    "record_event",
    "revert_row",
    "revert_table",
    "track_table",
    "trackers",
    "untrack_table",
]

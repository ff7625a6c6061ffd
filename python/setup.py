"""The package version is read from the extension's control file (its single source)."""

import importlib.util
import pathlib
import sys

from setuptools import setup

_here = pathlib.Path(__file__).parent / "history_track"
# control_version() of history_track/_resources.py (the one reader of default_version),
# loaded from its file: the package itself imports psycopg, which a build need not have.
_spec = importlib.util.spec_from_file_location("_history_track_resources", _here / "_resources.py")
_resources = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _resources  # (its dataclass looks its module up)
_spec.loader.exec_module(_resources)

setup(version=_resources.control_version((_here / "history_track.control").read_text()))

"""The package version is read from the extension's control file (its single source)."""

import pathlib
import re

from setuptools import setup

_control = pathlib.Path(__file__).parent / "history_track" / "history_track.control"
_version = re.search(r"^default_version\s*=\s*'([^']+)'", _control.read_text(), re.M).group(1)

setup(version=_version)

"""Temporary PostgreSQL servers with history_track installed.

Shared by ``history-track demo``, the project's tests and the pytest plugin.

* Built on testing.postgresql (initdb + postgres in a temporary directory, on a
  free port, removed on exit).
* Root-safe: PostgreSQL refuses to run as root, so when the caller is root the
  server runs as an unprivileged OS user (``postgres`` unless told otherwise)
  through ``setpriv``; the temporary directory is handed to that user.
* Version-aware: any PostgreSQL installation, chosen by its ``pg_config``.
* Leaves the installation untouched: the extension's files go into a private
  *overlay* of the installation (a copy of the server binaries next to a share
  directory made of links to the real one plus our files), so the server finds
  history_track without anything being written under ``/usr``. PostgreSQL finds
  its share and lib directories relative to its own binary, which is what
  makes the overlay work.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import testing.postgresql

from ._resources import extension_files


class ServerError(RuntimeError):
    """A temporary server could not be prepared or started."""


@dataclass(frozen=True)
class Installation:
    """A PostgreSQL installation, as its pg_config describes it."""

    pg_config: str
    bindir: Path
    sharedir: Path
    pkglibdir: Path
    version: str  # "15.18"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @classmethod
    def find(cls, pg_config: str | os.PathLike[str] | None = None) -> Installation:
        """The installation of ``pg_config`` (default: $PG_CONFIG, else pg_config on PATH)."""
        exe = str(pg_config or os.environ.get("PG_CONFIG") or shutil.which("pg_config") or "")
        if not exe:
            raise ServerError(
                "pg_config was not found; install PostgreSQL (e.g. apt-get install postgresql) "
                "or pass the path of its pg_config"
            )
        try:
            out = subprocess.run(
                [exe, "--bindir", "--sharedir", "--pkglibdir", "--version"],
                check=True, capture_output=True, text=True,
            ).stdout.splitlines()
        except (OSError, subprocess.CalledProcessError) as exc:
            raise ServerError(f"cannot run {exe}: {exc}") from exc
        version = out[3].split()[1]
        return cls(exe, Path(out[0]), Path(out[1]), Path(out[2]), version)


def _unprivileged_user() -> str | None:
    """The OS user to run the server as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    user = os.environ.get("HISTORY_TRACK_SERVER_USER", "postgres")
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise ServerError(
            f"running as root, and there is no OS user {user!r} to run PostgreSQL as; "
            "create one (useradd --system postgres) or set HISTORY_TRACK_SERVER_USER"
        ) from None
    return user


def _place(src: Path, dst: Path) -> None:
    """Put a binary at dst: a hard link when possible, else a copy (never a symlink,
    since PostgreSQL resolves symlinks to find its own directory)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build_overlay(inst: Installation, root: Path, with_extension: bool = True) -> Installation:
    """Lay out an overlay of ``inst`` under ``root`` with history_track's files in
    its extension directory (or, with ``with_extension=False``, exactly the
    installation's own, e.g. what ``pgxn install`` put there), and return it as
    an Installation."""
    common = Path(os.path.commonpath([inst.bindir, inst.sharedir, inst.pkglibdir]))
    bindir = root / inst.bindir.relative_to(common)
    sharedir = root / inst.sharedir.relative_to(common)
    pkglibdir = root / inst.pkglibdir.relative_to(common)

    bindir.mkdir(parents=True)
    for name in ("postgres", "initdb", "pg_ctl"):
        if (inst.bindir / name).exists():
            _place(inst.bindir / name, bindir / name)
    # Siblings of bin/ (lib/ for $ORIGIN-relative libraries, ...), except share/.
    for entry in inst.bindir.parent.iterdir():
        target = bindir.parent / entry.name
        if entry.name != inst.bindir.name and not target.exists() and entry != inst.sharedir \
                and not inst.sharedir.is_relative_to(entry):
            target.symlink_to(entry)
    if not pkglibdir.exists():
        pkglibdir.parent.mkdir(parents=True, exist_ok=True)
        pkglibdir.symlink_to(inst.pkglibdir)

    sharedir.mkdir(parents=True)
    for entry in inst.sharedir.iterdir():
        if entry.name != "extension":
            (sharedir / entry.name).symlink_to(entry)
    extdir = sharedir / "extension"
    extdir.mkdir()
    for entry in (inst.sharedir / "extension").iterdir():
        if not (with_extension and entry.name.startswith("history_track")):
            (extdir / entry.name).symlink_to(entry)
    if with_extension:
        for name, text in extension_files().files().items():
            (extdir / name).write_text(text)
    return Installation(inst.pg_config, bindir, sharedir, pkglibdir, inst.version)


class TemporaryServer(testing.postgresql.Postgresql):  # type: ignore[misc]
    """A throw-away PostgreSQL server with history_track available.

    Use it as a context manager::

        with TemporaryServer() as server:
            conn = psycopg.connect(server.url())

    ``database`` (default ``test``) is created empty; run CREATE EXTENSION in it
    or use :func:`history_track.install.create_extension`.
    """

    def __init__(self, pg_config: str | os.PathLike[str] | None = None, *,
                 installation: Installation | None = None, **kwargs: Any) -> None:
        # installation: run that layout as it is (e.g. one built by
        # build_overlay(..., with_extension=False) that pgxn installed into),
        # instead of an overlay of pg_config's installation with our files.
        self.installation = installation or Installation.find(pg_config)
        self.run_as = _unprivileged_user()
        if self.run_as is not None:
            probe = self.installation.sharedir / "postgres.bki"
            if subprocess.run(self.as_server_user(["test", "-r", str(probe)])).returncode != 0:
                raise ServerError(
                    f"the server runs as OS user {self.run_as!r}, who cannot read {probe}; "
                    "put the PostgreSQL installation where that user can read it (not under /root)"
                )
        base_dir = Path(tempfile.mkdtemp(prefix="history_track_"))
        self._own_base_dir = base_dir
        try:
            self.overlay = installation or build_overlay(self.installation, base_dir / "pg")
        except Exception:
            shutil.rmtree(base_dir, ignore_errors=True)
            raise
        kwargs.setdefault("initdb", str(self.overlay.bindir / "initdb"))
        kwargs.setdefault("postgres", str(self.overlay.bindir / "postgres"))
        kwargs.setdefault("initdb_args", "-U postgres -A trust --no-sync --encoding=UTF8 --locale=C")
        kwargs.setdefault(
            "postgres_args",
            "-h 127.0.0.1 -F -c logging_collector=off -c max_connections=50 -c lc_messages=C",
        )
        kwargs["base_dir"] = str(base_dir)
        try:
            super().__init__(**kwargs)
        except Exception:
            shutil.rmtree(base_dir, ignore_errors=True)
            raise

    # testing.postgresql hooks -------------------------------------------------

    def as_server_user(self, argv: list[str]) -> list[str]:
        """argv, run as the OS user the server runs as (root cannot run it)."""
        if self.run_as is None:
            return argv
        return ["setpriv", f"--reuid={self.run_as}", f"--regid={self.run_as}", "--init-groups", "--", *argv]

    def setup(self) -> None:
        for sub in self.subdirectories:
            path = Path(self.base_dir) / sub
            path.mkdir(mode=0o700, exist_ok=True)
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            for path in [Path(self.base_dir), *(Path(self.base_dir) / s for s in self.subdirectories)]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
            os.chmod(self.base_dir, 0o755)
        self.initialize_database()

    def initialize_database(self) -> None:
        data = Path(self.base_dir) / "data"
        if (data / "PG_VERSION").exists():
            return
        argv = self.as_server_user(
            [self.initdb, "-D", str(data), "--lc-messages=C", *self.settings["initdb_args"].split()]
        )
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ServerError(f"initdb failed:\n{proc.stdout}\n{proc.stderr}")

    def get_server_commandline(self) -> list[str]:
        return self.as_server_user(super().get_server_commandline())

    def cleanup(self) -> None:
        super().cleanup()
        if self.child_process is None:
            shutil.rmtree(self._own_base_dir, ignore_errors=True)

    # conveniences -------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self.settings["port"])

    def conninfo(self, dbname: str = "test", user: str = "postgres") -> str:
        """A libpq connection string for one of the server's databases."""
        return f"host=127.0.0.1 port={self.port} user={user} dbname={dbname}"

    def environ(self) -> dict[str, str]:
        """Environment variables that point libpq clients (psql, pg_regress) here."""
        return {"PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": "postgres"}

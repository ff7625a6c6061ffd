"""Temporary PostgreSQL servers with history_track installed.

Shared by ``history-track demo``, the project's tests and the pytest plugin.

* Self-contained: initdb and postgres in a temporary directory, on a free
  port, stopped and removed on exit. Nothing but psycopg is needed, so
  ``history-track demo`` and ``history-track sandbox`` work from a plain
  ``pip install``.
* Root-safe: PostgreSQL refuses to run as root, so when the caller is root the
  server runs as an unprivileged OS user (``postgres`` unless told otherwise)
  through ``setpriv``; that user gets the data and socket directories, root
  keeps the rest (see TemporaryServer).
* Version-aware: any PostgreSQL installation, chosen by its ``pg_config``.
* Leaves the installation untouched: the extension's files go into a private
  *overlay* of the installation (a copy of the server binaries next to a share
  directory made of links to the real one plus our files), so the server finds
  history_track without anything being written under ``/usr``. PostgreSQL finds
  its share and lib directories relative to its own binary, which is what
  makes the overlay work.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

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
                check=True,
                capture_output=True,
                text=True,
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
        if (
            entry.name != inst.bindir.name
            and not target.exists()
            and entry != inst.sharedir
            and not inst.sharedir.is_relative_to(entry)
        ):
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


def _free_port() -> int:
    """A port number no TCP listener on 127.0.0.1 has right now (the server's
    socket is named by it; with ``listen_addresses`` set, it listens there)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TemporaryServer:
    """A throw-away PostgreSQL server with history_track available.

    Use it as a context manager::

        with TemporaryServer() as server:
            conn = psycopg.connect(server.conninfo())

    The constructor runs initdb and starts the server (``auto_start=False``:
    only initdb; call :meth:`start`); :meth:`stop` (or leaving the ``with``
    block) shuts it down and removes every file. ``database`` (default
    ``test``) is created empty; run CREATE EXTENSION in it or use
    :func:`history_track.install.create_extension`.

    ``port`` is chosen free unless given; ``postgres_args`` and
    ``initdb_args`` replace the defaults below.

    Only the OS user it runs as can connect: it trusts whoever does, so it
    listens on no TCP address, only on a Unix socket in a directory of mode
    0700 (:meth:`conninfo` names it), and rejects TCP connections if
    ``postgres_args`` sets ``listen_addresses``. (On 127.0.0.1 with ``trust``,
    any local user was its superuser, and ran programs as its OS user.)
    """

    INITDB_ARGS = "-U postgres -A trust --no-sync --encoding=UTF8 --locale=C"
    POSTGRES_ARGS = "-c listen_addresses= -F -c logging_collector=off -c max_connections=50 -c lc_messages=C"
    BOOT_TIMEOUT = 60.0  # seconds until the server must accept connections
    STOP_TIMEOUT = 30.0  # seconds a fast shutdown may take before the server is killed

    def __init__(
        self,
        pg_config: str | os.PathLike[str] | None = None,
        *,
        installation: Installation | None = None,
        port: int | None = None,
        database: str = "test",
        initdb_args: str | None = None,
        postgres_args: str | None = None,
        auto_start: bool = True,
    ) -> None:
        # installation: run that layout as it is (e.g. one built by
        # build_overlay(..., with_extension=False) that pgxn installed into),
        # instead of an overlay of pg_config's installation with our files.
        self.installation = installation or Installation.find(pg_config)
        self.run_as = _unprivileged_user()
        if self.run_as is not None:
            probe = self.installation.sharedir / "postgres.bki"
            if subprocess.run(self.as_server_user(["test", "-r", str(probe)]), check=False).returncode != 0:
                raise ServerError(
                    f"the server runs as OS user {self.run_as!r}, who cannot read {probe}; "
                    "put the PostgreSQL installation where that user can read it (not under /root)"
                )
        self.database = database
        self.initdb_args = initdb_args if initdb_args is not None else self.INITDB_ARGS
        self.postgres_args = postgres_args if postgres_args is not None else self.POSTGRES_ARGS
        self.child_process: subprocess.Popen[bytes] | None = None  # the postmaster
        self._port = port
        self._port_given = port is not None
        self._owner = os.getpid()
        self.base_dir = Path(tempfile.mkdtemp(prefix="history_track_"))
        try:
            self.overlay = installation or build_overlay(self.installation, self.base_dir / "pg")
            self._initdb()
            if auto_start:
                self.start()
        except BaseException:
            self.stop()
            raise

    # paths ----------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "tmp"

    @property
    def log_file(self) -> Path:
        """The server's stdout and stderr (its log, as logging_collector is off)."""
        return self.base_dir / "postgresql.log"

    # life cycle -----------------------------------------------------------------

    def as_server_user(self, argv: list[str]) -> list[str]:
        """argv, run as the OS user the server runs as (root cannot run it)."""
        if self.run_as is None:
            return argv
        return ["setpriv", f"--reuid={self.run_as}", f"--regid={self.run_as}", "--init-groups", "--", *argv]

    def _initdb(self) -> None:
        for path in (self.data_dir, self.socket_dir):
            path.mkdir(mode=0o700)
        if self.run_as is not None:
            # The server's OS user gets its data and socket directories, not
            # base_dir: root opens the log there by name (a link the server's
            # user put in its place would have root write wherever it points).
            entry = pwd.getpwnam(self.run_as)
            for path in (self.data_dir, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            os.chmod(self.base_dir, 0o711)  # entered to reach them, not listed
        argv = self.as_server_user(
            [
                str(self.overlay.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "--lc-messages=C",
                *shlex.split(self.initdb_args),
                "--auth-host=reject",  # whatever initdb_args say: the server trusts whoever connects locally
            ]
        )
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise ServerError(f"cannot run initdb: {exc}") from exc
        if proc.returncode != 0:
            raise ServerError(f"initdb failed:\n{proc.stdout}\n{proc.stderr}")

    def start(self) -> None:
        """Start the server (again, after a stop or a crash: the data stays) and
        wait until it accepts connections. A port taken between choosing it and
        binding it is replaced by another free one."""
        if self.child_process is not None:
            return
        for _attempt in range(5):
            if self._port is None:
                self._port = _free_port()
            offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            argv = self.as_server_user(
                [
                    str(self.overlay.bindir / "postgres"),
                    "-p",
                    str(self._port),
                    "-D",
                    str(self.data_dir),
                    "-k",
                    str(self.socket_dir),
                    *shlex.split(self.postgres_args),
                ]
            )
            # (0600: the log may show what the tests write; root's only, when root runs it.)
            with open(os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
                # Its own session: a Ctrl-C meant for a terminal's foreground
                # job (psql in history-track sandbox) does not reach the server.
                self.child_process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
                )
            if self._wait_until_ready():
                break
            self.child_process.wait()
            self.child_process = None
            log_text = self.log_file.read_bytes()[offset:].decode(errors="replace")
            if self._port_given or ("could not bind" not in log_text and "could not create" not in log_text):
                raise ServerError(f"PostgreSQL did not start:\n{log_text}")
            self._port = None  # taken meanwhile: another one
        else:
            raise ServerError(f"PostgreSQL did not start: no free port\n{self.log_file.read_text()}")
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.database]).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def _wait_until_ready(self) -> bool:
        """True once the server accepts connections; False if it exited."""
        assert self.child_process is not None
        deadline = time.monotonic() + self.BOOT_TIMEOUT
        # Through its Unix socket, in its own directory: whatever else listens
        # on the TCP port (another server that took it first), this is ours.
        own = make_conninfo(host=str(self.socket_dir), port=self._port, user="postgres", dbname="postgres")
        while self.child_process.poll() is None:
            try:
                psycopg.connect(own, connect_timeout=5).close()
                return True
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.terminate()
                    raise ServerError(
                        f"PostgreSQL did not accept connections within {self.BOOT_TIMEOUT:.0f}s:\n"
                        f"{self.log_file.read_text(errors='replace')}"
                    ) from None
                time.sleep(0.05)
        return False

    def terminate(self) -> None:
        """Shut the server down (fast shutdown: sessions are ended, nothing is
        lost); kill it if that takes longer than STOP_TIMEOUT. Files stay."""
        proc, self.child_process = self.child_process, None
        if proc is None or os.getpid() != self._owner:  # a forked child does not own it
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self) -> None:
        """Shut the server down and remove its files."""
        if os.getpid() != self._owner:
            return
        self.terminate()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> TemporaryServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        # A server nobody stopped (an exception before stop(), a forgotten
        # instance) goes with its object rather than outliving the process.
        base_dir = getattr(self, "base_dir", None)
        if getattr(self, "child_process", None) is not None or (base_dir is not None and base_dir.exists()):
            with contextlib.suppress(Exception):
                self.stop()

    # conveniences -------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError("the server has not been started")
        return self._port

    def conninfo(self, dbname: str | None = None, user: str = "postgres") -> str:
        """A libpq connection string for one of the server's databases (default:
        ``database``), through its Unix socket."""
        return make_conninfo(host=str(self.socket_dir), port=self.port, user=user, dbname=dbname or self.database)

    def url(self, dbname: str | None = None, user: str = "postgres") -> str:
        """The same as a URL: postgresql://user@/dbname?host=<socket directory>&port=<port>."""
        query = urllib.parse.urlencode({"host": str(self.socket_dir), "port": self.port})
        return f"postgresql://{urllib.parse.quote(user)}@/{urllib.parse.quote(dbname or self.database)}?{query}"

    def environ(self) -> dict[str, str]:
        """Environment variables that point libpq clients (psql, pg_regress) here."""
        return {"PGHOST": str(self.socket_dir), "PGPORT": str(self.port), "PGUSER": "postgres"}

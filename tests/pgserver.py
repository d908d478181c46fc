"""A throwaway PostgreSQL cluster for tests, the demo and benchmarks.

When ``DATABASE_URL`` is unset, :func:`ensure_database_url` runs ``initdb`` + ``pg_ctl`` from the
machine's server binaries in a temp dir on a free loopback port, exports ``DATABASE_URL`` (so child
processes share the server) and stops the server when the process exits. PostgreSQL refuses to
run as root, so as root the binaries run as the ``postgres`` user through ``runuser``.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path


class DatabaseServerError(RuntimeError):
    """No PostgreSQL server could be started or reached for the tests."""


_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/opt/postgresql*/bin")
_FAST = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=200 -c shared_buffers=128MB"
)


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl`` (``MIGTOOLS_PG_BINDIR`` overrides)."""
    configured = os.environ.get("MIGTOOLS_PG_BINDIR")
    candidates = [configured] if configured else []
    found = shutil.which("initdb")
    if found:
        candidates.append(str(Path(found).parent))
    for pattern in _SEARCH:
        candidates.extend(sorted(glob.glob(pattern), key=_version_key, reverse=True))
    for candidate in candidates:
        if (
            candidate
            and (Path(candidate) / "initdb").is_file()
            and (Path(candidate) / "pg_ctl").is_file()
        ):
            return Path(candidate)
    raise DatabaseServerError(
        "No PostgreSQL server binaries (initdb, pg_ctl) found and DATABASE_URL is not set.\n"
        "Install the server (e.g. `apt-get install postgresql`), set MIGTOOLS_PG_BINDIR to the "
        "directory holding initdb, or point DATABASE_URL at a running server."
    )


def _version_key(path: str) -> tuple[int, ...]:
    digits = [int(p) for p in Path(path).parent.name.split(".") if p.isdigit()]
    return tuple(digits) or (0,)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayServer:
    """One PostgreSQL cluster in a temp dir; ``start()`` returns its URL."""

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="migtools-pg-"))
        self.datadir = self.root / "data"
        self.port = _free_port()
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            try:
                entry = pwd.getpwnam(self._user)
            except KeyError:
                raise DatabaseServerError(
                    "Running as root, and PostgreSQL refuses to run as root: create an "
                    "unprivileged 'postgres' user or set DATABASE_URL."
                ) from None
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.running = False

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root)
        if proc.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise DatabaseServerError(
                f"{' '.join(args[:2])} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}{tail}"
            )

    def start(self) -> str:
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.root} {_FAST}"
        )
        self._run(
            "pg_ctl",
            "start",
            "-w",
            "-D",
            str(self.datadir),
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
        )
        self.running = True
        return self.url

    def stop(self) -> None:
        if self.running:
            with contextlib.suppress(DatabaseServerError):
                self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.datadir))
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)


_server: ThrowawayServer | None = None


def _exit_on_terminate() -> None:
    """Turn SIGTERM/SIGHUP into a normal exit so that atexit stops the server (a killed test
    run must not leave a cluster behind)."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(signum) in (signal.SIG_DFL, None):
                signal.signal(signum, handler)
        except ValueError:  # not the main thread
            pass


def ensure_database_url() -> str:
    """Return ``DATABASE_URL``, starting a throwaway server (stopped at exit) when unset."""
    global _server
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    _server = ThrowawayServer()
    atexit.register(_server.stop)
    _exit_on_terminate()
    url = _server.start()
    os.environ["DATABASE_URL"] = url
    return url

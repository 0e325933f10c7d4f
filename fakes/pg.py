"""A throwaway PostgreSQL server for tests: its own ``initdb`` in a temporary directory.

::

    with start_postgres() as url:  # postgresql+asyncpg://postgres@127.0.0.1:PORT/bridge_test
        engine = create_async_engine(url)

Needs the server binaries (Debian: ``apt-get install postgresql``; ``scripts/system-deps.sh``).
The cluster the Debian package creates is not used. PostgreSQL refuses to run as root, so as root
the server runs as the ``postgres`` user (or ``nobody``) through ``runuser``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fakes.server import free_port

_TOOLS = ("initdb", "pg_ctl", "postgres", "createdb")
SUPERUSER = "postgres"


def find_postgres_bin() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None.

    ``initdb`` on PATH first (symlinks resolved), then the newest ``/usr/lib/postgresql/*/bin``.
    """
    candidates: list[Path] = []
    if on_path := shutil.which("initdb"):
        candidates.append(Path(on_path).resolve().parent)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(versions)
    for directory in candidates:
        if all(os.access(directory / tool, os.X_OK) for tool in _TOOLS):
            return directory
    return None


def _server_user() -> str | None:
    """As root: the unprivileged user to run the server as; otherwise None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


@contextmanager
def start_postgres(database: str = "bridge_test") -> Iterator[str]:
    """Start a fresh server on 127.0.0.1 (trust auth, fsync off) and yield its SQLAlchemy URL.

    The server is stopped and its directory removed on exit, also when start-up fails.
    """
    bindir = find_postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found: run scripts/system-deps.sh")
    user = _server_user()
    # As root, /tmp rather than $TMPDIR: the server user must be able to reach the directory.
    root = Path(tempfile.mkdtemp(prefix="bridge-pg-", dir="/tmp" if user else None))
    data, log = root / "data", root / "server.log"

    def run(*args: str | Path, check: bool = True) -> None:
        cmd = [str(a) for a in args]
        if user:
            cmd = ["runuser", "-u", user, "--", *cmd]
        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}{server_log}")

    try:
        if user:
            shutil.chown(root, user)
        run(bindir / "initdb", "-D", data, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-locale")
        port = free_port()
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{root}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        run(bindir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "start")
        run(bindir / "createdb", "-h", root, "-p", str(port), "-U", SUPERUSER, database)
        yield f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{port}/{database}"
    finally:
        if (data / "postmaster.pid").exists():
            run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)

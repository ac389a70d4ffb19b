"""Migration cost: N small migrations applied, as whole processes, by

  * direct: the same SQL in one session of the database's own client (sqlite3 / psql), the baseline;
  * yoyo: ``yoyo apply`` (yoyo-migrations) on the same scripts;
  * ansible: ``ansible-playbook`` running relops.release.db_migrate, startup included;
  * engine: the db_migrate engine alone in a ``python`` process (no Ansible).

Each tool gets a fresh database. PostgreSQL runs on a throwaway cluster (tests/fixtures/postgres.py).
Prints one JSON object. The issue's headline figures use 1,000 migrations:

    .venv/bin/python benchmarks/migrations.py --migrations 1000
    .venv/bin/python benchmarks/migrations.py --migrations 200 --databases sqlite   # the make bench default is 200
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Callable, Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.join(REPO, "tests"))

from fixtures.postgres import free_port, start_cluster, stop_cluster  # noqa: E402

PLAYBOOK = """
- name: Migrate
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Apply
      relops.release.db_migrate:
        db_url: "{{ db_url }}"
        migrations_dir: "{{ migrations_dir }}"
"""

ENGINE = """
import sys
sys.path.insert(0, %r)
from ansible_collections.relops.release.plugins.module_utils import migrations as m
db = m.open_database(sys.argv[1])
outcome = m.Migrator(db, m.load_scripts(sys.argv[2])).migrate()
assert outcome.failure is None and len(outcome.applied) == int(sys.argv[3]), outcome.failure
""" % os.path.join(REPO, "build", "src")


def migration_sql(number: int) -> str:
    return "CREATE TABLE t%d (id INTEGER PRIMARY KEY, name VARCHAR(20));\nINSERT INTO t%d VALUES (1, 'x');\n" % (
        number,
        number,
    )


def write_scripts(base: str, count: int) -> Dict[str, str]:
    flyway, yoyo = os.path.join(base, "flyway"), os.path.join(base, "yoyo")
    os.makedirs(flyway)
    os.makedirs(yoyo)
    everything = []
    for number in range(1, count + 1):
        sql = migration_sql(number)
        everything.append(sql)
        with open(os.path.join(flyway, "V%d__table_%d.sql" % (number, number)), "w", encoding="utf-8") as handle:
            handle.write(sql)
        with open(os.path.join(yoyo, "%05d_table.sql" % number), "w", encoding="utf-8") as handle:
            handle.write(sql)
    single = os.path.join(base, "all.sql")
    with open(single, "w", encoding="utf-8") as handle:
        handle.write("".join(everything))
    return {"flyway": flyway, "yoyo": yoyo, "single": single}


def timed(command: List[str], env: Dict[str, str], stdin: "str | None" = None) -> float:
    started = time.perf_counter()
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as source:
        done = subprocess.run(command, env=env, stdin=source, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit("%s failed:\n%s%s" % (" ".join(command[:3]), done.stdout[-2000:], done.stderr[-2000:]))
    return elapsed


def ansible_env(workdir: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "RELOPS_"))}
    env.update(
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"),
        ANSIBLE_INVENTORY=os.path.join(REPO, "inventories", "local", "hosts.yml"),
        ANSIBLE_LOCAL_TEMP=os.path.join(workdir, ".ansible-tmp"),
        PATH=BIN + os.pathsep + env.get("PATH", ""),
    )
    return env


def run_all(
    kind: str, new_database: Callable[[str], Dict[str, str]], paths: Dict[str, str], count: int, workdir: str
) -> Dict[str, float]:
    env = ansible_env(workdir)
    playbook = os.path.join(workdir, "migrate.yml")
    with open(playbook, "w", encoding="utf-8") as handle:
        handle.write(PLAYBOOK)
    direct_db = new_database("direct")
    if kind == "sqlite":
        direct = timed(["sqlite3", direct_db["path"]], env, stdin=paths["single"])
    else:
        direct = timed(["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-f", paths["single"], direct_db["url"]], env)
    yoyo_db = new_database("yoyo")
    yoyo = timed(
        [
            os.path.join(BIN, "yoyo"),
            "apply",
            "--batch",
            "--no-config-file",
            "--database",
            yoyo_db["yoyo"],
            paths["yoyo"],
        ],
        env,
    )
    ansible_db = new_database("ansible")
    ansible = timed(
        [
            os.path.join(BIN, "ansible-playbook"),
            playbook,
            "-e",
            json.dumps({"db_url": ansible_db["url"], "migrations_dir": paths["flyway"]}),
        ],
        env,
    )
    engine_db = new_database("engine")
    engine = timed([sys.executable, "-c", ENGINE, engine_db["url"], paths["flyway"], str(count)], env)
    return {"direct_s": direct, "yoyo_s": yoyo, "ansible_playbook_s": ansible, "engine_s": engine}


def summarise(times: Dict[str, float], count: int) -> Dict[str, float]:
    summary = {key: round(value, 3) for key, value in times.items()}
    summary.update(
        ansible_overhead_ms_per_migration=round((times["ansible_playbook_s"] - times["direct_s"]) * 1000 / count, 3),
        engine_overhead_ms_per_migration=round((times["engine_s"] - times["direct_s"]) * 1000 / count, 3),
        yoyo_overhead_ms_per_migration=round((times["yoyo_s"] - times["direct_s"]) * 1000 / count, 3),
        ansible_vs_yoyo_ratio=round(times["ansible_playbook_s"] / times["yoyo_s"], 3),
        yoyo_vs_direct_ratio=round(times["yoyo_s"] / times["direct_s"], 3),
    )
    return summary


def bench_sqlite(base: str, paths: Dict[str, str], count: int) -> Dict[str, float]:
    def new_database(name: str) -> Dict[str, str]:
        path = os.path.join(base, "%s.db" % name)
        return {"path": path, "url": "sqlite:///" + path.lstrip("/"), "yoyo": "sqlite:///" + path}

    return summarise(run_all("sqlite", new_database, paths, count, base), count)


def bench_postgres(base: str, paths: Dict[str, str], count: int) -> Dict[str, float]:
    cluster_dir = tempfile.mkdtemp(prefix="relops-bench-pg-")
    os.chmod(cluster_dir, 0o755)
    server = start_cluster(cluster_dir, free_port())
    try:

        def new_database(name: str) -> Dict[str, str]:
            database = "bench_%s_%s" % (name, uuid.uuid4().hex[:8])
            with server.admin() as admin:
                admin.execute("CREATE DATABASE %s" % database)
            url = server.url(database)
            return {"url": url, "yoyo": url.replace("postgresql://", "postgresql+psycopg://")}

        return summarise(run_all("postgresql", new_database, paths, count, base), count)
    finally:
        stop_cluster(cluster_dir)
        shutil.rmtree(cluster_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--migrations", type=int, default=200)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="relops-bench-migrations-")
    os.chmod(base, 0o755)
    try:
        paths = write_scripts(base, args.migrations)
        results: Dict[str, object] = {"benchmark": "migrations", "migrations": args.migrations}
        for database in args.databases.split(","):
            if database == "sqlite":
                results["sqlite"] = bench_sqlite(base, paths, args.migrations)
            elif database == "postgresql":
                results["postgresql"] = bench_postgres(base, paths, args.migrations)
            else:
                raise SystemExit("unknown database %r; use sqlite and/or postgresql" % database)
        print(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

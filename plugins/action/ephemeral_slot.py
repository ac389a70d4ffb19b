# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.ephemeral_slot (documentation in plugins/modules/ephemeral_slot.py)."""

from __future__ import annotations

import datetime
import re
import urllib.parse
from typing import Any, Dict, List, Optional

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, utc_now
from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC

NAME = re.compile(r"^[a-z][a-z0-9-]{0,47}$")

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "name": {"type": "str"},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent", "reaped"]},
    "ttl": {"type": "int", "default": 3600},
    "port_range": {"type": "list", "elements": "int", "default": [20000, 20999]},
    "slot_root": {"type": "str", "default": "/var/lib/relops/ephemeral"},
    "db_admin_url": {"type": "str", "no_log": True},
    "db_prefix": {"type": "str", "default": "eph_"},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        _check_arguments(args)
        if args["state"] == "reaped":
            return self._reap(args)
        before = self._read_active(args)
        result = self._provision(args, before) if args["state"] == "present" else self._tear_down(args, before)
        if self.diff_mode:
            header = "ephemeral environment %s" % args["name"]
            result["diff"] = {
                "before": _describe(before),
                "after": _describe(result["env"] if args["state"] == "present" else None),
                "before_header": header,
                "after_header": header,
            }
        return result

    def _read_active(self, args: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        existing = self.open_task_ledger_readonly(args)
        if existing is None:
            return None
        with existing as ledger:
            return ledger.active_env(args["name"])

    def _provision(self, args: Dict[str, Any], before: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        if before is not None:
            return {"changed": False, "outcome": "exists", "env": _with_url(before, args)}
        db_name = _database_name(args) if args["db_admin_url"] else None
        slot_dir = "%s/%s" % (args["slot_root"].rstrip("/"), args["name"])
        if self.check_mode:
            moment = utc_now()
            planned = {
                "name": args["name"],
                "status": "active",
                "port": None,
                "db_name": db_name,
                "slot_dir": slot_dir,
                "expires_at": format_timestamp(moment + datetime.timedelta(seconds=args["ttl"])),
            }
            return {"changed": True, "outcome": "provisioned", "env": _with_url(planned, args)}
        ports = (args["port_range"][0], args["port_range"][1])
        with self.open_task_ledger(args) as ledger:
            env = ledger.provision_env(self.actor, args["name"], ports, args["ttl"], db_name, slot_dir)
            try:
                if db_name:
                    create_database(args["db_admin_url"], db_name)
            except LedgerError:
                # Nothing half-made: the environment is not left active without its database.
                ledger.end_env(int(env["id"]), "torn_down")
                raise
        self.audit("ephemeral_env", action="provisioned", name=env["name"], port=env["port"], db_name=db_name)
        return {"changed": True, "outcome": "provisioned", "env": _with_url(env, args)}

    def _tear_down(self, args: Dict[str, Any], before: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        if before is None:
            return {"changed": False, "outcome": "absent", "env": None}
        if self.check_mode:
            return {"changed": True, "outcome": "torn_down", "env": dict(before, status="torn_down")}
        with self.open_task_ledger(args) as ledger:
            env = self._end(ledger, args, before, "torn_down")
        return {"changed": True, "outcome": "torn_down", "env": env}

    def _reap(self, args: Dict[str, Any]) -> Dict[str, Any]:
        existing = self.open_task_ledger_readonly(args)
        if existing is None:
            return {"changed": False, "reaped": []}
        with existing as ledger:
            expired = ledger.expired_envs()
        if not expired or self.check_mode:
            return {"changed": bool(expired), "reaped": [dict(env, status="reaped") for env in expired]}
        reaped: List[Dict[str, Any]] = []
        with self.open_task_ledger(args) as ledger:
            for env in expired:
                reaped.append(self._end(ledger, args, env, "reaped"))
        return {"changed": True, "reaped": reaped}

    def _end(self, ledger: Ledger, args: Dict[str, Any], env: Dict[str, Any], status: str) -> Dict[str, Any]:
        if env.get("db_name"):
            if not args["db_admin_url"]:
                raise LedgerError(
                    "ephemeral environment %r has database %r; give db_admin_url so it can be dropped"
                    % (env["name"], env["db_name"])
                )
            drop_database(args["db_admin_url"], env["db_name"])
        ended = ledger.end_env(int(env["id"]), status)
        self.audit("ephemeral_env", action=status, name=env["name"], port=env["port"], db_name=env.get("db_name"))
        return ended


def _check_arguments(args: Dict[str, Any]) -> None:
    if args["state"] != "reaped" and (not args["name"] or not NAME.match(args["name"])):
        raise LedgerError(
            "name %r is not valid; use a lowercase letter then up to 47 lowercase letters, digits or '-'" % args["name"]
        )
    if args["ttl"] <= 0:
        raise LedgerError("ttl %d is not valid; give the lifetime in seconds, above 0" % args["ttl"])
    ports = args["port_range"]
    if len(ports) != 2 or not 1024 <= ports[0] <= ports[1] <= 65535:
        raise LedgerError("port_range %r is not valid; give [low, high] with 1024 <= low <= high <= 65535" % ports)
    if args["db_admin_url"] and not args["db_admin_url"].startswith(("postgresql://", "postgres://")):
        raise LedgerError("db_admin_url must be a postgresql:// URL of a user allowed to create databases")


def _database_name(args: Dict[str, Any]) -> str:
    return str(args["db_prefix"] + args["name"]).replace("-", "_")


def _with_url(env: Dict[str, Any], args: Dict[str, Any]) -> Dict[str, Any]:
    """The environment with the URL of its database (the admin URL pointed at it)."""
    result = dict(env)
    if env.get("db_name") and args["db_admin_url"]:
        parts = urllib.parse.urlsplit(args["db_admin_url"])
        result["db_url"] = urllib.parse.urlunsplit(parts._replace(path="/" + env["db_name"]))
    return result


def _describe(env: Optional[Dict[str, Any]]) -> str:
    if env is None:
        return ""
    fields = ("name", "status", "port", "db_name", "slot_dir", "expires_at")
    return "".join("%s: %s\n" % (field, env.get(field)) for field in fields)


def _connect(admin_url: str) -> Any:
    # psycopg is needed only when a database is asked for.
    try:
        import psycopg  # noqa: PLC0415
    except ImportError:
        raise LedgerError(
            "db_admin_url needs the Python package psycopg (version 3) on the controller; "
            "install it with: pip install 'psycopg[binary]'"
        ) from None
    try:
        return psycopg.connect(admin_url, autocommit=True, connect_timeout=10)
    except psycopg.Error as error:
        raise LedgerError("cannot connect to db_admin_url's server: %s" % str(error).strip()) from None


def create_database(admin_url: str, name: str) -> None:
    """CREATE DATABASE unless it exists (PostgreSQL has no IF NOT EXISTS for databases)."""
    from psycopg import Error, sql  # noqa: PLC0415

    with _connect(admin_url) as connection:
        try:
            if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except Error as error:
            raise LedgerError("cannot create database %r: %s" % (name, str(error).strip())) from None


def drop_database(admin_url: str, name: str) -> None:
    """DROP DATABASE, disconnecting the test run's leftover sessions (PostgreSQL 13 and later)."""
    from psycopg import Error, sql  # noqa: PLC0415

    with _connect(admin_url) as connection:
        try:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        except Error as error:
            raise LedgerError("cannot drop database %r: %s" % (name, str(error).strip())) from None

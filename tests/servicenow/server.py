"""The ServiceNow stand-in: a real HTTP server on 127.0.0.1.

It follows the documented REST contract of a ServiceNow instance:

- Table API ``/api/now/table/{table}[/{sys_id}]`` (GET, POST, PATCH, PUT,
  DELETE) with ``sysparm_query``, ``sysparm_fields``, ``sysparm_limit``,
  ``sysparm_offset``, ``sysparm_display_value`` (true/false/all) and
  ``sysparm_exclude_reference_link``; ``X-Total-Count`` and ``Link``
  (first/prev/next/last) headers; errors shaped
  ``{"error": {"message", "detail"}, "status": "failure"}``
  (ServiceNow docs, "Table API" and "REST API HTTP response codes").
- Change Management API ``/api/sn_chg_rest/change`` (list), ``/change/normal``,
  ``/change/emergency``, ``/change/standard/{template}``, ``/change/{sys_id}``
  (GET/PATCH), ``/nextstates`` (available_states, state_label),
  ``/approvals`` (PATCH state/comments), ``/conflict`` (POST starts, GET
  reads conflicts); fields as ``{"value", "display_value"}``
  (ServiceNow docs, "Change Management API").
- IRE ``/api/now/identifyreconcile`` with ``sysparm_data_source``
  (ServiceNow docs, "Identification and Reconciliation API").
- OAuth ``/oauth_token.do`` (password, refresh_token, client_credentials grants;
  access_token, refresh_token, scope, token_type, expires_in)
  (ServiceNow docs, "OAuth inbound", "Resource owner password credential grant").
- Auth: basic, bearer tokens it issued, ``x-sn-apikey`` API keys, and client
  certificates when served over TLS by the caller.

Fault injection: a queue of explicit faults and a random fault rate, each
one of ``429`` (with Retry-After), ``500``, ``502``, ``503``, ``504``,
``slow`` (answers after ``slow_seconds``), ``reset`` (drops the connection
before handling) and ``reset_after`` (handles the request, then drops the
connection, so the client cannot know whether a write happened).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import random
import socket
import ssl
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlencode, urlsplit

from . import schema
from .query import QueryError, compile_query

Record = Dict[str, Any]
DEFAULT_LIMIT = 10000


class ApiError(Exception):
    def __init__(self, status: int, message: str, detail: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


@dataclass
class Faults:
    """Which faults to inject: ``queue`` first (explicit), then ``rate`` at random among ``kinds``."""

    rate: float = 0.0
    kinds: Tuple[str, ...] = ("429", "502", "503", "504", "reset", "reset_after")
    retry_after: float = 0.05
    slow_seconds: float = 2.0
    seed: int = 7
    queue: List[str] = field(default_factory=list)
    injected: Dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def pick(self, path: str) -> Optional[str]:
        if self.queue:
            return self.queue.pop(0)
        if path.startswith("/oauth_token.do") or self.rate <= 0:
            return None
        if self._random.random() < self.rate:
            return self._random.choice(self.kinds)
        return None


def now_text() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


class Instance:
    """The instance's data and rules, guarded by one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tables: Dict[str, Dict[str, Record]] = {name: {} for name in schema.TABLES}
        self.counters: Dict[str, int] = {}
        self.users: Dict[str, str] = {"admin": "admin-secret"}
        self.oauth_clients: Dict[str, str] = {"relops": "client-secret"}
        self.api_keys: Dict[str, str] = {}
        self.tokens: Dict[str, Tuple[str, float]] = {}
        self.refresh_tokens: Dict[str, str] = {}
        self.token_lifetime = 1800
        # The grant_type of every token request, in order, for tests of the client's grant choice.
        self.oauth_grants: List[str] = []
        self.change_api = True
        self.requests: List[Tuple[str, str]] = []
        self.faults = Faults()
        self.ire_sources = {"ServiceNow", "relops", "SG-Ansible"}
        # Where the Table, Attachment, CMDB Instance and IRE APIs are served; tests add roots for api_path.
        self.api_roots = ["/api/now"]
        # Attachment contents by sys_attachment sys_id (the metadata is the sys_attachment record).
        self.files: Dict[str, bytes] = {}
        self._seed()

    def _seed(self) -> None:
        admin = self.insert("sys_user", {"user_name": "admin", "name": "System Administrator", "active": "true"})
        self.insert("sys_user", {"user_name": "cab.manager", "name": "CAB Manager", "active": "true"})
        self.insert("sys_user_group", {"name": "CAB Approval", "active": "true", "manager": admin["sys_id"]})
        for name, parent, child in (
            ("Runs on::Runs", "Runs on", "Runs"),
            ("Depends on::Used by", "Depends on", "Used by"),
            ("Hosted on::Hosts", "Hosted on", "Hosts"),
            ("Contains::Contained by", "Contains", "Contained by"),
            ("Connects to::Connected by", "Connects to", "Connected by"),
        ):
            self.insert("cmdb_rel_type", {"name": name, "parent_descriptor": parent, "child_descriptor": child})

    # Records

    def insert(self, table: str, values: Record, who: str = "admin") -> Record:
        allowed = set(schema.columns(table))
        record: Record = dict.fromkeys(allowed, "")
        stamp = now_text()
        record.update(self._defaults(table, stamp, who))
        record.update(
            {
                key: _as_text(value)
                for key, value in values.items()
                if key in allowed and key not in schema.SYSTEM_COLUMNS
            }
        )
        record.update(
            sys_id=uuid.uuid4().hex,
            sys_class_name=table,
            sys_created_on=stamp,
            sys_updated_on=stamp,
            sys_created_by=who,
            sys_updated_by=who,
            sys_mod_count="0",
        )
        record["work_notes"] = "" if "work_notes" in record else None
        prefix = next((p for t, p in schema.NUMBER_PREFIX.items() if schema.is_a(table, t)), None)
        if prefix and not record.get("number"):
            self.counters[prefix] = self.counters.get(prefix, 10000) + 1
            record["number"] = "%s%07d" % (prefix, self.counters[prefix])
        record = {key: value for key, value in record.items() if value is not None}
        self.tables[table][record["sys_id"]] = record
        return record

    def _defaults(self, table: str, stamp: str, who: str) -> Record:
        defaults = schema.create_defaults(table)
        user_id = ""
        if schema.USER in defaults.values():
            user = [r for r in self.tables["sys_user"].values() if r["user_name"] == who]
            user_id = user[0]["sys_id"] if user else ""
        return {
            column: stamp if value == schema.NOW else user_id if value == schema.USER else value
            for column, value in defaults.items()
        }

    def find(self, table: str, sys_id: str) -> Optional[Record]:
        for name in self.tables:
            if schema.is_a(name, table) and sys_id in self.tables[name]:
                return self.tables[name][sys_id]
        return None

    def select(self, table: str, query: str, pairs: Optional[Dict[str, str]] = None) -> List[Record]:
        """Records of the table (and its subclasses) matching an encoded query and name-value pairs.

        Terms and pairs on fields the table does not have are ignored, as the Table API documents.
        """
        known = set(schema.columns(table))
        try:
            matches, order = compile_query(query, lambda column: column in known)
        except QueryError as exc:
            raise ApiError(400, "Invalid query", "cannot parse %r" % str(exc)) from None
        equal = {column: value for column, value in (pairs or {}).items() if column in known}
        found = [
            r
            for name in self.tables
            if schema.is_a(name, table)
            for r in self.tables[name].values()
            if matches(r) and all(str(r.get(column, "")) == value for column, value in equal.items())
        ]
        found.sort(key=lambda r: r["sys_created_on"] + r["sys_id"])
        for column, descending in reversed(order):
            found.sort(key=lambda r, c=column: str(r.get(c, "")), reverse=descending)
        return found

    def update(self, table: str, record: Record, values: Record, who: str = "admin") -> Record:
        allowed = set(schema.columns(record["sys_class_name"]))
        changes = {
            key: _as_text(value) for key, value in values.items() if key in allowed and key not in schema.SYSTEM_COLUMNS
        }
        if schema.is_a(record["sys_class_name"], "change_request"):
            self._check_change_update(record, changes)
        if record["sys_class_name"] == "incident":
            self._check_incident_update(record, changes)
        note = changes.pop("work_notes", None)
        if note:
            self.insert(
                "sys_journal_field",
                {
                    "element_id": record["sys_id"],
                    "element": "work_notes",
                    "name": record["sys_class_name"],
                    "value": note,
                },
                who,
            )
        decision = changes.get("state") if record["sys_class_name"] == "sysapproval_approver" else None
        if decision in ("approved", "rejected") and record.get("state") == "requested":
            # The approval engine's business rules carry an approver's decision to the change.
            change = self.find("change_request", record["sysapproval"])
            if change is not None:
                self.decide(change, decision, changes.get("comments", ""), "cab.manager")
        record.update(changes)
        record["sys_updated_on"] = now_text()
        record["sys_updated_by"] = who
        record["sys_mod_count"] = str(int(record["sys_mod_count"]) + 1)
        if schema.is_a(record["sys_class_name"], "change_request") and "state" in changes:
            self._enter_state(record)
        if record["sys_class_name"] == "incident":
            self.settle_incident(record, who)
        return record

    # Incident rules

    def _check_incident_update(self, record: Record, changes: Record) -> None:
        target = changes.get("state")
        if target is None or target == record["state"]:
            return
        if target not in schema.INCIDENT_STATES:
            raise ApiError(400, "Operation Failed", "Invalid state value %s for incident" % target)
        if target in schema.INCIDENT_RESOLVED:
            missing = [
                label
                for column, label in (("close_code", "Resolution code"), ("close_notes", "Resolution notes"))
                if not (changes.get(column) or record.get(column))
            ]
            if missing:
                raise ApiError(403, "Operation Failed", "Data Policy Exception: %s mandatory" % " and ".join(missing))

    def settle_incident(self, record: Record, who: str) -> None:
        """Business rules an instance runs on an incident write: priority, state mirror, resolution stamps."""
        record["impact"] = record.get("impact") or "3"
        record["urgency"] = record.get("urgency") or "3"
        record["priority"] = schema.PRIORITY_LOOKUP.get((record["impact"], record["urgency"]), "5")
        record["state"] = record.get("state") or "1"
        record["incident_state"] = record["state"]
        record["opened_at"] = record.get("opened_at") or record["sys_created_on"]
        if record["state"] in schema.INCIDENT_RESOLVED and not record.get("resolved_at"):
            user = self.select("sys_user", "user_name=%s" % who)
            record["resolved_at"] = now_text()
            record["resolved_by"] = user[0]["sys_id"] if user else ""
        if record["state"] not in schema.INCIDENT_RESOLVED:
            record["resolved_at"] = ""
        record["active"] = "false" if record["state"] in schema.INCIDENT_INACTIVE else "true"
        if record["state"] == "7" and not record.get("closed_at"):
            record["closed_at"] = now_text()

    # Change rules

    def _check_change_update(self, record: Record, changes: Record) -> None:
        target = changes.get("state")
        if target is None or target == record["state"]:
            return
        if target not in schema.CHANGE_STATES:
            raise ApiError(400, "Operation Failed", "Invalid state value %s for change_request" % target)
        if target not in self.next_states(record):
            raise ApiError(
                403,
                "Operation Failed",
                "State transition from %s to %s is not allowed for %s"
                % (schema.CHANGE_STATES[record["state"]], schema.CHANGE_STATES[target], record["number"]),
            )
        if target == "3" and not (changes.get("close_code") or record.get("close_code")):
            raise ApiError(403, "Operation Failed", "Data Policy Exception: Close code is mandatory")

    def next_states(self, record: Record) -> List[str]:
        flow = schema.CHANGE_TRANSITIONS.get(record.get("type") or "normal", schema.CHANGE_TRANSITIONS["normal"])
        allowed = list(flow.get(record["state"], []))
        if record["state"] == "-3" and record.get("approval") != "approved":
            allowed = [s for s in allowed if s != "-2"]
        if record["state"] in schema.CANCELABLE:
            allowed.append("4")
        return allowed

    def _enter_state(self, record: Record) -> None:
        if record["state"] == "-3":
            record["approval"] = "requested"
            approver = self.select("sys_user", "user_name=cab.manager")[0]
            self.insert(
                "sysapproval_approver",
                {
                    "sysapproval": record["sys_id"],
                    "document_id": record["sys_id"],
                    "source_table": "change_request",
                    "approver": approver["sys_id"],
                    "state": "requested",
                },
            )
        if record["state"] in ("3", "4"):
            record["active"] = "false"
            record["closed_at"] = now_text()

    def decide(self, record: Record, state: str, comments: str, approver_name: str = "cab.manager") -> None:
        """An approver approves or rejects; approval moves a change on to Scheduled, rejection back to New."""
        approver = self.select("sys_user", "user_name=%s" % approver_name)[0]
        pending = self.select("sysapproval_approver", "sysapproval=%s^state=requested" % record["sys_id"])
        if not pending:
            raise ApiError(403, "Operation Failed", "No approval is requested for %s" % record["number"])
        for approval in pending:
            approval.update(state=state, comments=comments, approver=approver["sys_id"], sys_updated_on=now_text())
        record["approval"] = state
        record["state"] = "-2" if state == "approved" else "-5"
        record["sys_updated_on"] = now_text()

    def conflicts(self, change: Record) -> List[Record]:
        """Blackout spans and other changes on the same CI overlapping the change's window."""
        for old in self.select("conflict", "change=%s" % change["sys_id"]):
            del self.tables["conflict"][old["sys_id"]]
        start, end = change.get("start_date", ""), change.get("end_date", "")
        if not start or not end:
            return []
        found: List[Record] = []
        for span in self.select("cmn_schedule_span", ""):
            schedule = self.find("cmn_schedule", span["schedule"])
            blackout = schedule is not None and schedule["sys_class_name"] == "cmn_schedule_blackout"
            if blackout and span["start_date_time"] < end and start < span["end_date_time"]:
                found.append(
                    self.insert(
                        "conflict",
                        {
                            "change": change["sys_id"],
                            "type": "blackout",
                            "schedule": schedule["sys_id"],
                            "configuration_item": change.get("cmdb_ci", ""),
                            "description": "Blackout %s" % schedule["name"],
                        },
                    )
                )
        if change.get("cmdb_ci"):
            for other in self.select(
                "change_request", "cmdb_ci=%s^active=true^sys_id!=%s" % (change["cmdb_ci"], change["sys_id"])
            ):
                if other.get("start_date") and other["start_date"] < end and start < other.get("end_date", ""):
                    found.append(
                        self.insert(
                            "conflict",
                            {
                                "change": change["sys_id"],
                                "type": "ci_already_scheduled",
                                "conflicting_change": other["sys_id"],
                                "configuration_item": change["cmdb_ci"],
                                "description": "CI already scheduled by %s" % other["number"],
                            },
                        )
                    )
        change["conflict_status"] = "Conflict" if found else "No Conflict"
        change["conflict_last_run"] = now_text()
        return found

    # Output

    def render(
        self, table: str, record: Record, fields: Optional[List[str]], display: str, exclude_links: bool, base: str
    ) -> Record:
        out: Record = {}
        for column in fields or sorted(record):
            if column not in record:
                continue
            value = record[column]
            label = self._display(column, value, record)
            reference = schema.REFERENCE_COLUMNS.get(column)
            if (record["sys_class_name"], column) in schema.REFERENCE_EXCEPTIONS or (
                column == "parent" and schema.is_a(record["sys_class_name"], "task")
            ):
                reference = None
            if display == "true":
                out[column] = label
            elif display == "all":
                out[column] = {"display_value": label, "value": value}
            elif reference and value and not exclude_links:
                out[column] = {"link": "%s/api/now/table/%s/%s" % (base, reference, value), "value": value}
            else:
                out[column] = value
        return out

    def _display(self, column: str, value: str, record: Record) -> str:
        label = schema.choice_label(record["sys_class_name"], column, value)
        if label is not None:
            return label
        reference = schema.REFERENCE_COLUMNS.get(column)
        if reference and value and (record["sys_class_name"], column) not in schema.REFERENCE_EXCEPTIONS:
            target = self.find(reference, value)
            if target:
                return str(target.get("number") or target.get("name") or target.get("user_name") or value)
        return value

    def change_api_record(self, record: Record) -> Record:
        """Change Management API shape: every field as {value, display_value}."""
        return {
            column: {"value": value, "display_value": self._display(column, value, record)}
            for column, value in sorted(record.items())
        }


def _check_source(instance: Instance, body: Record) -> None:
    if body.get("source") not in instance.ire_sources:
        raise ApiError(
            400, "Invalid data source", "source %r is not a registered discovery source" % (body.get("source"),)
        )


def _attachment_meta(record: Record, base: str) -> Record:
    meta = {column: record.get(column, "") for column in schema.columns("sys_attachment")}
    meta["download_link"] = "%s/api/now/attachment/%s/file" % (base, record["sys_id"])
    return meta


def _json_body(raw: bytes) -> Record:
    """A request's JSON object, or the 400 an instance answers for anything else."""
    if not raw:
        return {}
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "Exception while reading request", "The payload is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Exception while reading request", "The payload must be a JSON object.")
    return body


def _count_parameter(query: Dict[str, str], name: str, default: int) -> int:
    text = query.get(name) or ""
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, "Invalid value for %s" % name, "%s must be a whole number, got %r" % (name, text)) from None
    if value < 0:
        raise ApiError(400, "Invalid value for %s" % name, "%s must not be negative, got %r" % (name, text))
    return value


def _display_mode(query: Dict[str, str]) -> str:
    """sysparm_display_value: true, false or all, in any case (clients send Python's True and False)."""
    mode = query.get("sysparm_display_value", "false").strip().lower()
    return mode if mode in ("true", "all") else "false"


def _name_value_pairs(query: Dict[str, str]) -> Dict[str, str]:
    """The Table API reads every parameter that is not a sysparm_ one as a field=value filter."""
    return {key: value for key, value in query.items() if not key.startswith("sysparm_")}


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else str(value)


class Handler(BaseHTTPRequestHandler):
    server: "StandInServer"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle's algorithm and delayed ACKs
    # add 40 ms to every keep-alive response.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the tests read the request log instead."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_PUT(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        instance = self.server.instance
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with instance.lock:
            instance.requests.append((method, parts.path))
            fault = instance.faults.pick(parts.path)
            if fault:
                instance.faults.injected[fault] = instance.faults.injected.get(fault, 0) + 1
        if fault in ("429", "500", "502", "503", "504"):
            headers = {"Retry-After": "%g" % instance.faults.retry_after} if fault == "429" else {}
            message = "Too Many Requests" if fault == "429" else "Service Unavailable"
            self._send(
                int(fault), {"error": {"message": message, "detail": "injected fault"}, "status": "failure"}, headers
            )
            return
        if fault == "reset":
            self._reset()
            return
        if fault == "slow":
            time.sleep(instance.faults.slow_seconds)
        query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            status, body, headers = self._route(method, parts.path, query, raw)
        except ApiError as exc:
            status, body, headers = (
                exc.status,
                {"error": {"message": exc.message, "detail": exc.detail}, "status": "failure"},
                {},
            )
        except Exception as exc:  # an instance answers 500 with an error body, never a dropped connection
            status, body, headers = (
                500,
                {"error": {"message": "Internal server error", "detail": repr(exc)}, "status": "failure"},
                {},
            )
        if fault == "reset_after":
            self._reset()
            return
        self._send(status, body, headers)

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _send(self, status: int, body: Any, headers: Dict[str, str]) -> None:
        headers = dict(headers)
        content_type = headers.pop("Content-Type", "application/json;charset=UTF-8")
        data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    # Auth

    def _authenticate(self) -> str:
        instance = self.server.instance
        key = self.headers.get("x-sn-apikey")
        if key is not None:
            if key in instance.api_keys:
                return instance.api_keys[key]
            raise ApiError(401, "User Not Authenticated", "Required to provide Auth information")
        header = self.headers.get("Authorization") or ""
        if header.startswith("Basic "):
            user, _sep, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
            if instance.users.get(user) == password:
                return user
        elif header.startswith("Bearer "):
            owner, expires = instance.tokens.get(header[7:], ("", 0.0))
            if owner and expires > time.time():
                return owner
        raise ApiError(401, "User Not Authenticated", "Required to provide Auth information")

    def _oauth(self, raw: bytes) -> Tuple[int, Any, Dict[str, str]]:
        instance = self.server.instance
        form = {key: values[-1] for key, values in parse_qs(raw.decode("utf-8")).items()}
        denied = (401, {"error": "access_denied", "error_description": "access_denied"}, {})
        if instance.oauth_clients.get(form.get("client_id", "")) != form.get("client_secret"):
            return denied
        grant = form.get("grant_type")
        instance.oauth_grants.append(str(grant))
        if grant == "password":
            if instance.users.get(form.get("username", "")) != form.get("password"):
                return denied
            owner = form["username"]
        elif grant == "refresh_token":
            owner = instance.refresh_tokens.get(form.get("refresh_token", ""), "")
            if not owner:
                return denied
        elif grant == "client_credentials":
            owner = "admin"
        else:
            return (400, {"error": "unsupported_grant_type", "error_description": "unsupported_grant_type"}, {})
        token, refresh = uuid.uuid4().hex, uuid.uuid4().hex
        instance.tokens[token] = (owner, time.time() + instance.token_lifetime)
        instance.refresh_tokens[refresh] = owner
        return (
            200,
            {
                "access_token": token,
                "refresh_token": refresh,
                "scope": "useraccount",
                "token_type": "Bearer",
                "expires_in": instance.token_lifetime,
            },
            {},
        )

    # Routes

    def _route(self, method: str, path: str, query: Dict[str, str], raw: bytes) -> Tuple[int, Any, Dict[str, str]]:
        instance = self.server.instance
        if path == "/oauth_token.do" and method == "POST":
            with instance.lock:
                return self._oauth(raw)
        user = self._authenticate()
        # /api/now, or another root a scripted REST API or proxy serves the same APIs under (api_path).
        root = next((r for r in instance.api_roots if path.startswith(r + "/")), None)
        rest = path[len(root) :] if root else path
        with instance.lock:
            if root and rest.startswith("/attachment"):
                return self._attachment(method, rest[len("/attachment") :].strip("/"), query, raw, user)
            body = _json_body(raw)
            if root and rest.startswith("/cmdb/instance/"):
                return self._cmdb_instance(method, rest[len("/cmdb/instance/") :].strip("/"), query, body, user)
            if root and rest.startswith("/table/"):
                return self._table(method, rest[len("/table/") :].strip("/").split("/"), query, body, user)
            if path.startswith("/api/sn_chg_rest/change") and instance.change_api:
                return self._change(
                    method, path[len("/api/sn_chg_rest/change") :].strip("/").split("/"), query, body, user
                )
            if root and rest == "/identifyreconcile" and method == "POST":
                return self._ire(query, body, user)
        raise ApiError(400, "Requested URI does not represent any resource", path)

    def _table(
        self, method: str, parts: List[str], query: Dict[str, str], body: Record, user: str
    ) -> Tuple[int, Any, Dict[str, str]]:
        instance = self.server.instance
        table = parts[0]
        if table not in schema.TABLES:
            raise ApiError(400, "Invalid table %s" % table, None)
        fields = [f for f in query.get("sysparm_fields", "").split(",") if f] or None
        display = _display_mode(query)
        exclude = query.get("sysparm_exclude_reference_link", "false").lower() == "true"
        base = self.server.base_url
        if len(parts) == 1 and method == "GET":
            return self._list(table, query, fields, display, exclude)
        if len(parts) == 1 and method == "POST":
            record = instance.insert(table, body, user)
            if schema.is_a(table, "change_request"):
                _default_change(record)
            if table == "incident":
                if record["state"] not in ("", *schema.INCIDENT_STATES):
                    del instance.tables[table][record["sys_id"]]
                    raise ApiError(400, "Operation Failed", "Invalid state value %s for incident" % record["state"])
                instance.settle_incident(record, user)
            return (
                201,
                {"result": instance.render(table, record, fields, display, exclude, base)},
                {"Location": "%s/api/now/table/%s/%s" % (base, table, record["sys_id"])},
            )
        record = instance.find(table, parts[1]) if len(parts) > 1 else None
        if record is None:
            raise ApiError(404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
        if method == "GET":
            return 200, {"result": instance.render(table, record, fields, display, exclude, base)}, {}
        if method == "PATCH":
            instance.update(table, record, body, user)
            return 200, {"result": instance.render(table, record, fields, display, exclude, base)}, {}
        if method == "DELETE":
            del instance.tables[record["sys_class_name"]][record["sys_id"]]
            return 204, None, {}
        raise ApiError(405, "Method not Supported", method)

    def _list(
        self, table: str, query: Dict[str, str], fields: Optional[List[str]], display: str, exclude: bool
    ) -> Tuple[int, Any, Dict[str, str]]:
        instance = self.server.instance
        records = instance.select(table, query.get("sysparm_query", ""), _name_value_pairs(query))
        limit = _count_parameter(query, "sysparm_limit", DEFAULT_LIMIT)
        offset = _count_parameter(query, "sysparm_offset", 0)
        page = records[offset : offset + limit]
        headers = {"X-Total-Count": str(len(records))}
        links = []

        def link(at: int, rel: str) -> str:
            params = dict(query, sysparm_offset=str(at), sysparm_limit=str(limit))
            return '<%s/api/now/table/%s?%s>;rel="%s"' % (self.server.base_url, table, urlencode(params), rel)

        links.append(link(0, "first"))
        if offset > 0:
            links.append(link(max(0, offset - limit), "prev"))
        if offset + limit < len(records):
            links.append(link(offset + limit, "next"))
        links.append(link(max(0, (len(records) - 1) // limit * limit), "last"))
        headers["Link"] = ",".join(links)
        result = [instance.render(table, r, fields, display, exclude, self.server.base_url) for r in page]
        return 200, {"result": result}, headers

    def _change(
        self, method: str, parts: List[str], query: Dict[str, str], body: Record, user: str
    ) -> Tuple[int, Any, Dict[str, str]]:
        instance = self.server.instance
        parts = [p for p in parts if p]
        if not parts and method == "GET":
            records = instance.select("change_request", query.get("sysparm_query", ""), _name_value_pairs(query))
            limit = _count_parameter(query, "sysparm_limit", DEFAULT_LIMIT)
            return (
                200,
                {"result": [instance.change_api_record(r) for r in records[:limit]]},
                {"X-Total-Count": str(len(records))},
            )
        if method == "POST" and parts and parts[0] in ("normal", "emergency", "standard"):
            kind = parts[0]
            values = dict(body, **query)
            values = {k: v for k, v in values.items() if not k.startswith("sysparm_")}
            if kind == "standard":
                template = instance.find("std_change_producer_version", parts[1]) if len(parts) > 1 else None
                if template is None:
                    raise ApiError(
                        404,
                        "No Record found",
                        "Standard change template version %s not found" % (parts[1] if len(parts) > 1 else ""),
                    )
                pairs = (p.partition("=") for p in template["template_value"].split("^") if "=" in p)
                defaults = {key: value for key, _sep, value in pairs}
                values = dict(defaults, **values, std_change_producer_version=template["sys_id"])
            values["type"] = kind
            record = instance.insert("change_request", values, user)
            _default_change(record)
            return 200, {"result": instance.change_api_record(record)}, {}
        record = instance.find("change_request", parts[0]) if parts else None
        if record is None:
            raise ApiError(404, "No Record found", "Change request %s not found" % (parts[0] if parts else ""))
        tail = parts[1] if len(parts) > 1 else ""
        if tail == "" and method == "GET":
            return 200, {"result": instance.change_api_record(record)}, {}
        if tail == "" and method == "PATCH":
            instance.update("change_request", record, body, user)
            return 200, {"result": instance.change_api_record(record)}, {}
        if tail == "nextstates" and method == "GET":
            states = [record["state"], *instance.next_states(record)]
            return (
                200,
                {"result": {"available_states": states, "state_label": {s: schema.CHANGE_STATES[s] for s in states}}},
                {},
            )
        if tail == "approvals" and method == "PATCH":
            state = str(body.get("state", ""))
            if state not in ("approved", "rejected"):
                raise ApiError(400, "Invalid approval state", "state must be approved or rejected, got %r" % state)
            instance.decide(record, state, str(body.get("comments", "")), user if user != "admin" else "cab.manager")
            return 200, {"result": instance.change_api_record(record)}, {}
        if tail == "conflict" and method == "POST":
            instance.conflicts(record)
            return 200, {"result": {"request_status": {"status": "Completed"}}}, {}
        if tail == "conflict" and method == "GET":
            found = instance.select("conflict", "change=%s" % record["sys_id"])
            return (
                200,
                {
                    "result": {
                        "conflicts": [instance.change_api_record(c) for c in found],
                        "request_status": {"status": "Completed"},
                    }
                },
                {},
            )
        raise ApiError(400, "Requested URI does not represent any resource", "/".join(parts))

    # Attachment API

    def _attachment(
        self, method: str, rest: str, query: Dict[str, str], raw: bytes, user: str
    ) -> Tuple[int, Any, Dict[str, str]]:
        instance = self.server.instance
        base = self.server.base_url
        if rest == "file" and method == "POST":
            return self._upload(query, raw, user)
        if rest == "" and method == "GET":
            records = instance.select("sys_attachment", query.get("sysparm_query", ""), _name_value_pairs(query))
            limit = _count_parameter(query, "sysparm_limit", DEFAULT_LIMIT)
            offset = _count_parameter(query, "sysparm_offset", 0)
            page = records[offset : offset + limit]
            return (
                200,
                {"result": [_attachment_meta(r, base) for r in page]},
                {"X-Total-Count": str(len(records))},
            )
        sys_id, _sep, tail = rest.partition("/")
        record = instance.find("sys_attachment", sys_id) if sys_id else None
        if record is None:
            raise ApiError(404, "No Record found", "Attachment %s does not exist or is not accessible" % sys_id)
        if method == "GET" and tail == "":
            return 200, {"result": _attachment_meta(record, base)}, {}
        if method == "GET" and tail == "file":
            return 200, instance.files[sys_id], {"Content-Type": record["content_type"]}
        if method == "DELETE" and tail == "":
            del instance.tables["sys_attachment"][sys_id]
            del instance.files[sys_id]
            return 204, None, {}
        raise ApiError(400, "Requested URI does not represent any resource", "/api/now/attachment/" + rest)

    def _upload(self, query: Dict[str, str], raw: bytes, user: str) -> Tuple[int, Any, Dict[str, str]]:
        instance = self.server.instance
        missing = [name for name in ("table_name", "table_sys_id", "file_name") if not query.get(name)]
        content_type = self.headers.get("Content-Type") or ""
        if missing or not content_type:
            raise ApiError(
                400,
                "Missing parameter",
                "POST /api/now/attachment/file needs %s" % ", ".join(missing or ["a Content-Type header"]),
            )
        table = query["table_name"]
        if table not in schema.TABLES or instance.find(table, query["table_sys_id"]) is None:
            raise ApiError(
                404,
                "No Record found",
                "Record %s in table %s does not exist or is not accessible" % (query["table_sys_id"], table),
            )
        record = instance.insert(
            "sys_attachment",
            {
                "file_name": query["file_name"],
                "content_type": content_type,
                "size_bytes": str(len(raw)),
                "size_compressed": str(len(raw)),
                "table_name": table,
                "table_sys_id": query["table_sys_id"],
                "hash": hashlib.sha256(raw).hexdigest(),
            },
            user,
        )
        instance.files[record["sys_id"]] = raw
        base = self.server.base_url
        return (
            201,
            {"result": _attachment_meta(record, base)},
            {"Location": "%s/api/now/attachment/%s" % (base, record["sys_id"])},
        )

    # CMDB Instance API

    def _cmdb_instance(
        self, method: str, rest: str, query: Dict[str, str], body: Record, user: str
    ) -> Tuple[int, Any, Dict[str, str]]:
        instance = self.server.instance
        parts = rest.split("/")
        class_name = parts[0]
        if class_name not in schema.TABLES or not schema.is_a(class_name, "cmdb_ci"):
            raise ApiError(400, "Invalid class name", "%s is not a CMDB class" % class_name)
        if len(parts) == 1 and method == "GET":
            records = instance.select(class_name, query.get("sysparm_query", ""))
            limit = _count_parameter(query, "sysparm_limit", DEFAULT_LIMIT)
            offset = _count_parameter(query, "sysparm_offset", 0)
            result = [{"sys_id": r["sys_id"], "name": r["name"]} for r in records[offset : offset + limit]]
            return 200, {"result": result}, {"X-Total-Count": str(len(records))}
        if len(parts) == 1 and method == "POST":
            _check_source(instance, body)
            attributes = body.get("attributes")
            if not isinstance(attributes, dict) or not attributes:
                raise ApiError(400, "Invalid input", "attributes must be an object of the CI's column values")
            record = instance.insert(class_name, dict(attributes, discovery_source=body["source"]), user)
            self._relate(record, body, user)
            return 201, {"result": self._ci_with_relations(record)}, {}
        found = instance.find(class_name, parts[1])
        if found is None:
            raise ApiError(404, "No Record found", "%s %s does not exist" % (class_name, parts[1]))
        record = found
        if len(parts) == 2 and method == "GET":
            return 200, {"result": self._ci_with_relations(record)}, {}
        if len(parts) == 2 and method == "PATCH":
            _check_source(instance, body)
            instance.update(class_name, record, dict(body.get("attributes") or {}), user)
            return 200, {"result": self._ci_with_relations(record)}, {}
        if len(parts) == 3 and parts[2] == "relation" and method == "POST":
            _check_source(instance, body)
            self._relate(record, body, user)
            return 201, {"result": self._ci_with_relations(record)}, {}
        if len(parts) == 4 and parts[2] == "relation" and method == "DELETE":
            relation = instance.find("cmdb_rel_ci", parts[3])
            if relation is None or record["sys_id"] not in (relation["parent"], relation["child"]):
                raise ApiError(404, "No Record found", "relation %s of %s does not exist" % (parts[3], parts[1]))
            del instance.tables["cmdb_rel_ci"][relation["sys_id"]]
            return 204, None, {}
        raise ApiError(400, "Requested URI does not represent any resource", "/api/now/cmdb/instance/" + rest)

    def _relate(self, record: Record, body: Record, user: str) -> None:
        """Add the body's outbound (this CI is the parent) and inbound (this CI is the child) relations."""
        instance = self.server.instance
        for key, outbound in (("outbound_relations", True), ("inbound_relations", False)):
            for relation in body.get(key) or []:
                kind = instance.find("cmdb_rel_type", str(relation.get("type", "")))
                target = instance.find("cmdb_ci", str(relation.get("target", "")))
                if kind is None or target is None:
                    raise ApiError(
                        400,
                        "Invalid relation",
                        "type %r and target %r must be the sys_ids of a cmdb_rel_type and a CI"
                        % (relation.get("type"), relation.get("target")),
                    )
                parent, child = (record, target) if outbound else (target, record)
                instance.insert(
                    "cmdb_rel_ci", {"parent": parent["sys_id"], "child": child["sys_id"], "type": kind["sys_id"]}, user
                )

    def _ci_with_relations(self, record: Record) -> Record:
        instance = self.server.instance
        base = self.server.base_url

        def reference(table: str, sys_id: str) -> Record:
            target = instance.find(table, sys_id) or {}
            return {
                "value": sys_id,
                "display_value": str(target.get("name") or sys_id),
                "link": "%s/api/now/table/%s/%s" % (base, table, sys_id),
            }

        def relations(column: str, other: str) -> List[Record]:
            return [
                {
                    "sys_id": r["sys_id"],
                    "type": reference("cmdb_rel_type", r["type"]),
                    "target": reference("cmdb_ci", r[other]),
                }
                for r in instance.select("cmdb_rel_ci", "%s=%s" % (column, record["sys_id"]))
            ]

        return {
            "attributes": dict(sorted(record.items())),
            "outbound_relations": relations("parent", "child"),
            "inbound_relations": relations("child", "parent"),
        }

    def _ire(self, query: Dict[str, str], body: Record, user: str) -> Tuple[int, Any, Dict[str, str]]:
        instance = self.server.instance
        source = query.get("sysparm_data_source", "")
        if source not in instance.ire_sources:
            raise ApiError(
                400, "Invalid data source", "sysparm_data_source %r is not a registered discovery source" % source
            )
        results = []
        for item in body.get("items", []):
            class_name = item.get("className", "")
            values = item.get("values", {})
            if class_name not in schema.TABLES or not schema.is_a(class_name, "cmdb_ci"):
                results.append(
                    {
                        "className": class_name,
                        "operation": "NO_CHANGE",
                        "errors": [{"error": "INVALID_INPUT_DATA", "message": "Invalid className %s" % class_name}],
                    }
                )
                continue
            identity = [c for c in ("serial_number", "fqdn", "name") if values.get(c)]
            if not identity:
                results.append(
                    {
                        "className": class_name,
                        "operation": "NO_CHANGE",
                        "errors": [{"error": "MISSING_MATCHING_ATTRIBUTES", "message": "no identifying attribute"}],
                    }
                )
                continue
            column = identity[0]
            found = instance.select(class_name, "%s=%s" % (column, str(values[column]).replace("^", "^^")))
            if found:
                record = found[0]
                before = dict(record)
                instance.update(class_name, record, values, user)
                changed = any(before.get(k) != record.get(k) for k in values)
                operation = "UPDATE" if changed else "NO_CHANGE"
            else:
                record = instance.insert(class_name, dict(values, discovery_source=source), user)
                operation = "INSERT"
            results.append(
                {
                    "className": class_name,
                    "operation": operation,
                    "sysId": record["sys_id"],
                    "identifierEntrySysId": "",
                    "identificationAttempts": [
                        {
                            "attributes": [column],
                            "searchOnTable": class_name,
                            "attemptResult": "MATCHED" if found else "NO_MATCH",
                        }
                    ],
                }
            )
        return 200, {"result": {"items": results, "relations": [], "additionalCommittedItems": []}}, {}


def _default_change(record: Record) -> None:
    record["type"] = record.get("type") or "normal"
    record["state"] = record.get("state") or "-5"
    record["active"] = "true"
    record["approval"] = "approved" if record["type"] == "standard" else "not requested"
    record["chg_model"] = record.get("chg_model") or ""


class StandInServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, instance: Instance) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.instance = instance
        self.base_url = "http://127.0.0.1:%d" % self.server_address[1]


class ServiceNowStandIn:
    """Start/stop wrapper the tests and benchmarks use."""

    def __init__(self) -> None:
        self.instance = Instance()
        self.server = StandInServer(self.instance)
        self.url = self.server.base_url
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self, tls: Optional[ssl.SSLContext] = None) -> "ServiceNowStandIn":
        """Serve plain HTTP, or HTTPS with a server-side context (which may require client certificates)."""
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            self.url = self.server.base_url = self.url.replace("http://", "https://")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def records(self, table: str, query: str = "") -> List[Record]:
        with self.instance.lock:
            return [dict(r) for r in self.instance.select(table, query)]

    def insert(self, table: str, values: Record) -> Record:
        with self.instance.lock:
            return dict(self.instance.insert(table, values))

    def update(self, table: str, sys_id: str, values: Record) -> Record:
        with self.instance.lock:
            record = self.instance.find(table, sys_id)
            if record is None:
                raise KeyError("%s has no record %s" % (table, sys_id))
            return dict(self.instance.update(table, record, values))

    def decide(self, number: str, state: str, comments: str, approver: str = "cab.manager") -> None:
        with self.instance.lock:
            change = self.instance.select("change_request", "number=%s" % number)[0]
            self.instance.decide(change, state, comments, approver)

    def request_count(self) -> int:
        return len(self.instance.requests)

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ITSM backend interface and the behaviour both backends share.

A backend supplies primitives (read and write one change, its allowed next
states, approvals; read and write CIs and relations). This base builds the
module-level behaviour on them once: idempotent creation by correlation id,
moving through states by name, waiting with backoff, upserting CIs by
identity columns with a diff, and impact traversal. ``local`` keeps the
records in the ledger; ``servicenow`` talks to an instance.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.relops.release.plugins.plugin_utils.backoff import Backoff, poll_until

from . import model
from .errors import ITSMAmbiguousWrite, ITSMError, ITSMNotFound

Record = Dict[str, Any]


def as_text(value: Any) -> str:
    """ServiceNow stores every field as text; compare and store values the same way on both backends."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


@dataclass
class CiUpsert:
    """One CI upsert worked out from a single lookup: the CI found (None: to create) and the wanted values."""

    ci_class: str
    match: Dict[str, str]
    wanted: Dict[str, str]
    fields: List[str]
    current: Optional[Record]

    def outcome(self) -> Tuple[Optional[Record], bool, Record, Record]:
        """(ci, changed, before, after) as upsert_ci returns them, before anything is written."""
        if self.current is None:
            return None, True, {}, dict(self.wanted, sys_class_name=self.ci_class)
        delta = {key: value for key, value in self.wanted.items() if as_text(self.current.get(key)) != value}
        return self.current, bool(delta), {key: as_text(self.current.get(key)) for key in delta}, delta


class ItsmBackend(abc.ABC):
    """Primitives per backend, shared behaviour here."""

    name = "abstract"

    # Change primitives

    @abc.abstractmethod
    def get_change(
        self, number: Optional[str] = None, sys_id: Optional[str] = None, correlation_id: Optional[str] = None
    ) -> Optional[Record]:
        """Return one change (state as a name), or None."""

    @abc.abstractmethod
    def list_changes(self, filters: Mapping[str, str], query: Optional[str], limit: int) -> List[Record]:
        """Return changes matching equality filters (and an encoded query on ServiceNow)."""

    @abc.abstractmethod
    def create_change(self, change_type: str, fields: Mapping[str, str], template: Optional[str]) -> Record:
        """Create a change; fields include correlation_id when given."""

    @abc.abstractmethod
    def write_change(self, change: Record, fields: Mapping[str, str]) -> Record:
        """Set fields on a change (not its state)."""

    @abc.abstractmethod
    def change_cis(self, change: Record) -> List[str]:
        """Return the sys_ids of the CIs the change affects."""

    @abc.abstractmethod
    def add_change_cis(self, change: Record, sys_ids: Sequence[str]) -> None:
        """Add affected CIs to a change."""

    @abc.abstractmethod
    def ci_changes(self, sys_id: str, limit: int) -> List[Record]:
        """Return the changes that affect a CI, the one that added it most recently (its last change) first."""

    @abc.abstractmethod
    def has_work_note(self, change: Record, note: str) -> bool:
        """Whether this exact work note is already on the change."""

    @abc.abstractmethod
    def add_work_note(self, change: Record, note: str) -> None:
        """Append a work note."""

    @abc.abstractmethod
    def next_states(self, change: Record) -> List[str]:
        """Return the state names the change may move to now."""

    @abc.abstractmethod
    def set_state(self, change: Record, target: str, fields: Mapping[str, str]) -> Record:
        """Move the change to one allowed next state, setting fields (close code, notes) with it."""

    @abc.abstractmethod
    def decide_approval(self, change: Record, decision: str, comments: str) -> Record:
        """Approve or reject the change's requested approval as the connecting user."""

    @abc.abstractmethod
    def approvals(self, change: Record) -> List[Record]:
        """Return the change's approvals: approver, state, comments."""

    @abc.abstractmethod
    def conflicts(self, change: Record) -> List[Record]:
        """Run conflict detection for the change's window and CI; return the conflicts."""

    # Incident primitives

    @abc.abstractmethod
    def create_incident(self, incident: Mapping[str, Any]) -> Record:
        """Open an incident and return it in the shape ``list_incidents`` returns.

        ``incident`` holds ``short_description``, ``service`` and ``environment``, and optionally
        ``description``, ``version``, ``severity`` (critical, high, moderate, low; default high),
        ``cmdb_ci`` (a CI name), ``caused_by`` (a change number), ``correlation_id``,
        ``assignment_group`` (a group name), ``caller`` (a user name), ``source`` and ``details``.
        """

    @abc.abstractmethod
    def list_incidents(self, filters: Mapping[str, str], query: Optional[str], limit: int) -> List[Record]:
        """Return incidents, newest first, matching equality filters (``number``, ``state`` as a name,
        ``correlation_id``, ``business_service`` as a service name, ``caused_by`` as a change number),
        and an encoded query on ServiceNow.

        Each incident has ``sys_id``, ``number``, ``short_description``, ``description``, ``state``
        (new, in_progress, on_hold, resolved, closed, canceled), ``impact``, ``urgency``, ``priority``
        (ServiceNow's values, "1" highest), ``severity`` (the priority's name), ``business_service``
        (name), ``cmdb_ci`` (name), ``caused_by`` (change number), ``correlation_id``,
        ``assignment_group`` (name), ``caller_id`` (user name), ``close_code``, ``opened_at`` and
        ``resolved_at`` (RFC 3339 UTC, empty while unresolved).
        """

    @abc.abstractmethod
    def resolve_incident(self, incident: Record, close_code: str, close_notes: str, resolved_at: str) -> Record:
        """Move an open incident to resolved with its resolution code and notes; return it as listed.

        ServiceNow stamps ``resolved_at`` itself when the state becomes Resolved (6); the local backend
        records the ``resolved_at`` given (when service was restored).
        """

    # CMDB primitives

    @abc.abstractmethod
    def check_ci_class(self, ci_class: str) -> str:
        """Fail naming the class when the backend does not know it."""

    @abc.abstractmethod
    def find_cis(
        self,
        ci_class: str,
        match: Mapping[str, str],
        limit: Optional[int] = None,
        fields: Optional[Sequence[str]] = None,
    ) -> List[Record]:
        """Return CIs of the class (and its subclasses) whose fields equal ``match``."""

    def find_cis_by_values(
        self, ci_class: str, column: str, values: Sequence[str], fields: Optional[Sequence[str]] = None
    ) -> List[Record]:
        """Return CIs whose ``column`` is one of ``values``; backends override this with one query per batch."""
        found: List[Record] = []
        for value in values:
            found.extend(self.find_cis(ci_class, {column: value}, fields=fields))
        return found

    @abc.abstractmethod
    def query_cis(self, ci_class: str, query: Optional[str], limit: Optional[int]) -> List[Record]:
        """Return CIs of a class filtered by an encoded query."""

    @abc.abstractmethod
    def get_cis(self, sys_ids: Sequence[str]) -> List[Record]:
        """Return the CIs with these sys_ids."""

    @abc.abstractmethod
    def create_ci(self, ci_class: str, values: Mapping[str, str]) -> Record:
        """Create a CI; return it."""

    @abc.abstractmethod
    def update_ci(self, ci: Record, values: Mapping[str, str]) -> Record:
        """Set fields on a CI; return it."""

    @abc.abstractmethod
    def relation_types(self) -> List[str]:
        """Return the relation type names, 'parent descriptor::child descriptor'."""

    @abc.abstractmethod
    def relations(self, sys_id: str, direction: str) -> List[Record]:
        """Return relations where the CI is parent (downstream) or child (upstream): parent, child, type."""

    @abc.abstractmethod
    def add_relation(self, parent: str, child: str, type_name: str) -> bool:
        """Relate two CIs; False when already related."""

    @abc.abstractmethod
    def remove_relation(self, parent: str, child: str, type_name: str) -> bool:
        """Remove the relation of this type between two CIs; False when there was none."""

    # Change schedules (blackout calendars, issue 5)

    def change_schedule(self, name: str) -> Optional[Record]:
        """Return the blackout or maintenance schedule ``name`` with its entries, or None.

        The record has ``name``, ``kind`` (blackout or maintenance), ``time_zone`` and
        ``spans`` (schedule entries with ServiceNow's cmn_schedule_span fields). The
        base answers None: the local backend keeps no schedules (calendars are files).
        """
        del name
        return None

    # Standard-change templates (issue 5)

    @abc.abstractmethod
    def standard_template(self, change: Record) -> Optional[Record]:
        """The standard-change template a change was created from, or None when it carries none.

        The record has ``producer`` (the template's name: ServiceNow's std_change_record_producer
        ``name``), ``producer_sys_id``, ``version`` (the std_change_producer_version sys_id the change
        references), ``version_name``, ``version_number``, ``current`` (whether that version is the
        template's current one), ``active`` and ``retired``. ``producer`` is None when the referenced
        version or its record producer no longer exists.
        """

    # Shared behaviour: changes

    def require_change(
        self, number: Optional[str] = None, sys_id: Optional[str] = None, correlation_id: Optional[str] = None
    ) -> Record:
        change = self.get_change(number=number, sys_id=sys_id, correlation_id=correlation_id)
        if change is None:
            what = number or sys_id or correlation_id
            raise ITSMNotFound(
                "change %s does not exist on the %s backend; check the number, or create it with "
                "relops.release.change_request and a correlation_id" % (what, self.name)
            )
        return change

    def ensure_change(
        self, change_type: str, fields: Mapping[str, str], template: Optional[str], attempts: int = 5
    ) -> Tuple[Record, bool]:
        """Create a change unless one with the same correlation id exists; return it and whether it was created.

        A create that fails ambiguously (the connection dropped after sending) is
        looked up again by correlation id before it is retried, so a retried run
        or a flaky network never makes a second change.
        """
        correlation_id = fields.get("correlation_id")
        for _attempt in range(attempts):
            if correlation_id:
                existing = self.get_change(correlation_id=correlation_id)
                if existing is not None:
                    return existing, False
            try:
                return self.create_change(change_type, fields, template), True
            except ITSMAmbiguousWrite as exc:
                if not correlation_id:
                    raise ITSMError(
                        "creating the change failed midway (%s) and without correlation_id it cannot be found again; "
                        "set correlation_id (e.g. the release id) so retries are safe" % exc
                    ) from None
        raise ITSMError(
            "creating change %s failed %d times; check the instance's health and retry" % (correlation_id, attempts)
        )

    def plan_moves(self, change: Record, target: str, allowed: Optional[List[str]] = None) -> List[str]:
        """Return the next state towards ``target``; fail when no allowed step leads there."""
        model.state_value(target)
        current = change["state"]
        if current == target:
            return []
        allowed = self.next_states(change) if allowed is None else allowed
        step = model.next_step(current, target, allowed)
        if step is None:
            hint = ""
            if current == "authorize" and change.get("approval") != "approved":
                hint = " (the change waits for approval: approval is %s)" % change.get("approval")
            raise ITSMError(
                "change %s cannot move from %s to %s%s; allowed next states are %s"
                % (change.get("number"), current, target, hint, ", ".join(allowed) or "none")
            )
        return [step]

    def move_to(
        self, change: Record, target: str, fields: Mapping[str, str], wait: Optional[Callable[[Record], Record]] = None
    ) -> Tuple[Record, List[str]]:
        """Walk a change to the target state one allowed step at a time; return it and the states passed."""
        allowed: Optional[List[str]] = self.next_states(change)
        check_route(change, target, allowed or [], wait is not None)
        passed: List[str] = []
        guard = 0
        while change["state"] != target:
            guard += 1
            if guard > len(model.STATE_VALUES) + 2:
                raise ITSMError(
                    "change %s did not reach %s; it stays in %s" % (change.get("number"), target, change["state"])
                )
            if (
                change["state"] == "authorize"
                and change.get("approval") != "approved"
                and wait is not None
                and target != "canceled"
            ):
                change = wait(change)
                allowed = None
                if change["state"] == target:
                    break
            step = self.plan_moves(change, target, allowed)[0]
            extra = dict(fields) if step in ("closed", "canceled") else {}
            change = self.set_state(change, step, extra)
            allowed = None
            passed.append(step)
        return change, passed

    def wait_for(
        self,
        change: Record,
        state: Optional[str],
        approval: Optional[str],
        backoff: Backoff,
        sleep: Optional[Callable[[float], None]] = None,
    ) -> Record:
        """Poll the change until it reaches a state or approval; fail on rejection or timeout."""
        number = change["number"]

        def read() -> Record:
            return self.require_change(sys_id=change["sys_id"])

        def done(current: Record) -> bool:
            if current.get("approval") == "rejected" and approval != "rejected":
                return True
            return (state is None or current["state"] == state) and (
                approval is None or current.get("approval") == approval
            )

        kwargs: Dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        result = poll_until(read, done, backoff, **kwargs)
        final = result.value
        if final.get("approval") == "rejected" and approval != "rejected":
            rejected = [a for a in self.approvals(final) if a.get("state") == "rejected"]
            who = rejected[-1] if rejected else {}
            raise ITSMError(
                "change %s was rejected by %s: %s; address the comment and request approval again"
                % (number, who.get("approver") or "an approver", who.get("comments") or "(no comment)")
            )
        if not result.done:
            raise ITSMError(
                "change %s did not reach %s within %gs (state %s, approval %s); "
                "raise wait_for.timeout or check the approvers"
                % (
                    number,
                    " and ".join(
                        x for x in ("state " + state if state else "", "approval " + approval if approval else "") if x
                    ),
                    backoff.timeout,
                    final["state"],
                    final.get("approval"),
                )
            )
        return final

    # Shared behaviour: incidents

    def ensure_incident(self, incident: Mapping[str, Any], attempts: int = 5) -> Tuple[Record, bool]:
        """Open an incident unless one with the same correlation id exists; return it and whether it was opened.

        As with changes, a create that fails midway is looked up again by correlation id before it is
        retried, so a retried breach or a flaky network never opens a second incident.
        """
        model.check_severity(str(incident.get("severity") or "high"))
        correlation_id = incident.get("correlation_id")
        sent = False
        for _attempt in range(attempts):
            if correlation_id:
                existing = self.list_incidents({"correlation_id": correlation_id}, None, 1)
                if existing:
                    # Found after a create that failed midway: that create is what opened it.
                    return existing[0], sent
            try:
                return self.create_incident(incident), True
            except ITSMAmbiguousWrite as exc:
                sent = True
                if not correlation_id:
                    raise ITSMError(
                        "opening the incident failed midway (%s) and without correlation_id it cannot be found "
                        "again; set correlation_id so retries are safe" % exc
                    ) from None
        raise ITSMError(
            "opening incident %s failed %d times; check the instance's health and retry" % (correlation_id, attempts)
        )

    def ensure_incident_resolved(
        self, number: str, close_code: str, close_notes: str, resolved_at: str
    ) -> Tuple[Record, bool]:
        """Resolve the incident ``number`` unless it is resolved (or closed) already; return it and whether
        this call resolved it, so a rerun after service was restored changes nothing."""
        if not close_code or not close_notes:
            raise ITSMError(
                "resolving incident %s needs close_code and close_notes (ServiceNow's Resolution code and "
                "Resolution notes are mandatory to resolve); give both" % number
            )
        found = self.list_incidents({"number": number}, None, 1)
        if not found:
            raise ITSMNotFound(
                "incident %s does not exist on the %s backend; check the number, or list incidents to find it"
                % (number, self.name)
            )
        if found[0]["state"] in model.INCIDENT_RESOLVED_STATES:
            return found[0], False
        return self.resolve_incident(found[0], close_code, close_notes, resolved_at), True

    # Shared behaviour: CMDB

    def upsert_ci(
        self, ci_class: str, identity: Sequence[str], values: Mapping[str, Any], check_mode: bool
    ) -> Tuple[Optional[Record], bool, Record, Record]:
        """Create or update the CI identified by ``identity`` columns; return (ci, changed, before, after)."""
        plan = self.plan_ci_upsert(ci_class, identity, values)
        return plan.outcome() if check_mode else self.apply_ci_upsert(plan)

    def plan_ci_upsert(self, ci_class: str, identity: Sequence[str], values: Mapping[str, Any]) -> "CiUpsert":
        """Look the CI up once and work out what an upsert would change, without writing."""
        self.check_ci_class(ci_class)
        wanted = {key: as_text(value) for key, value in values.items()}
        missing = [column for column in identity if not wanted.get(column)]
        if missing:
            raise ITSMError(
                "identity column(s) %s have no value for this %s CI; give them under attributes or change identity"
                % (", ".join(missing), ci_class)
            )
        match = {column: wanted[column] for column in identity}
        fields = sorted({"sys_id", "sys_class_name", "name", *wanted})
        found = self.find_cis(ci_class, match, limit=2, fields=fields)
        if len(found) > 1:
            raise ITSMError(
                "%d CIs of class %s match %s (%s); make the identity columns unique or address the CI by sys_id"
                % (len(found), ci_class, match, ", ".join(ci["sys_id"] for ci in found))
            )
        return CiUpsert(ci_class, match, wanted, fields, found[0] if found else None)

    def apply_ci_upsert(self, plan: "CiUpsert") -> Tuple[Optional[Record], bool, Record, Record]:
        """Write what ``plan`` found different (nothing when nothing is): no second lookup."""
        ci, changed, before, after = plan.outcome()
        if not changed:
            return ci, changed, before, after
        if plan.current is None:
            return self._create_ci_once(plan.ci_class, plan.match, plan.wanted, plan.fields), True, before, after
        return self.update_ci(plan.current, after), True, before, after

    def _create_ci_once(
        self,
        ci_class: str,
        match: Mapping[str, str],
        wanted: Mapping[str, str],
        fields: Sequence[str],
        attempts: int = 5,
    ) -> Record:
        """Create a CI; after an ambiguous failure look it up by identity before trying again."""
        for _attempt in range(attempts):
            try:
                return self.create_ci(ci_class, wanted)
            except ITSMAmbiguousWrite:
                found = self.find_cis(ci_class, match, limit=1, fields=fields)
                if found:
                    delta = {k: v for k, v in wanted.items() if as_text(found[0].get(k)) != v}
                    return self.update_ci(found[0], delta) if delta else found[0]
        raise ITSMError(
            "creating the %s CI %s failed %d times; check the instance's health and retry"
            % (ci_class, dict(match), attempts)
        )

    def upsert_many(
        self, ci_class: str, identity: str, items: Sequence[Mapping[str, Any]], check_mode: bool, batch: int = 100
    ) -> List[Tuple[Optional[Record], bool, Record, Record]]:
        """Upsert many CIs identified by one column: one read per batch, a write only for what differs."""
        self.check_ci_class(ci_class)
        results: List[Tuple[Optional[Record], bool, Record, Record]] = []
        for start in range(0, len(items), batch):
            chunk = [{key: as_text(value) for key, value in item.items()} for item in items[start : start + batch]]
            keys = [item.get(identity, "") for item in chunk]
            if not all(keys):
                raise ITSMError(
                    "every item needs a value for the identity column %s; item %d has none"
                    % (identity, start + keys.index("") + 1)
                )
            fields = sorted({"sys_id", "sys_class_name", "name", *(k for item in chunk for k in item)})
            existing: Dict[str, Record] = {}
            for ci in self.find_cis_by_values(ci_class, identity, keys, fields=fields):
                existing.setdefault(as_text(ci.get(identity)), ci)
            for item in chunk:
                current = existing.get(item[identity])
                if current is None:
                    created = (
                        None if check_mode else self._create_ci_once(ci_class, {identity: item[identity]}, item, fields)
                    )
                    results.append((created, True, {}, dict(item, sys_class_name=ci_class)))
                    continue
                delta = {k: v for k, v in item.items() if as_text(current.get(k)) != v}
                before = {k: as_text(current.get(k)) for k in delta}
                updated = self.update_ci(current, delta) if delta and not check_mode else current
                results.append((updated, bool(delta), before, delta))
        return results

    def impact(self, sys_ids: Sequence[str], direction: str, depth: int) -> Tuple[List[Record], List[Record]]:
        """Breadth-first over relations to ``depth``; return the affected CIs and the business services."""
        seen: Dict[str, int] = dict.fromkeys(sys_ids, 0)
        frontier = list(sys_ids)
        edges: List[Record] = []
        for level in range(1, depth + 1):
            following: List[str] = []
            for sys_id in frontier:
                for way in ("downstream", "upstream") if direction == "both" else (direction,):
                    for relation in self.relations(sys_id, way):
                        other = relation["child"] if way == "downstream" else relation["parent"]
                        edges.append(relation)
                        if other not in seen:
                            seen[other] = level
                            following.append(other)
            frontier = following
            if not frontier:
                break
        affected = [dict(ci, depth=seen[ci["sys_id"]]) for ci in self.get_cis([s for s in seen if s not in sys_ids])]
        affected.sort(key=lambda ci: (ci["depth"], ci.get("name") or ""))
        services = [ci for ci in affected if ci.get("sys_class_name") in model.BUSINESS_SERVICE_CLASSES]
        return affected, services


def check_route(change: Record, target: str, allowed: List[str], waiting: bool) -> None:
    """Refuse, before moving at all, a route that goes backwards or needs an approval nobody waits for."""
    model.state_value(target)
    current = change["state"]
    if target in ("canceled", current) or target in allowed:
        return
    order = model.STATE_ORDER
    if current not in order or target not in order or order.index(target) < order.index(current):
        raise ITSMError(
            "change %s cannot move from %s to %s; allowed next states are %s"
            % (change.get("number"), current, target, ", ".join(allowed) or "none")
        )
    crosses = order.index(current) <= order.index("authorize") < order.index(target)
    if crosses and change.get("type") != "standard" and change.get("approval") != "approved" and not waiting:
        raise ITSMError(
            "change %s must pass authorize on its way from %s to %s, which needs an approval (now %s); "
            "move it to authorize and have it approved first, or give wait_for to wait for the approval"
            % (change.get("number"), current, target, change.get("approval"))
        )

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the audit callback records and how: event fields, redaction, checkpoints, fsync policy, sinks.

The callback only translates Ansible's callbacks into calls on ``Recorder``;
everything that decides what a line holds lives here, where it is unit-tested.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from ansible_collections.relops.release.plugins.plugin_utils.audit.anchors import Anchor, LedgerAnchors
from ansible_collections.relops.release.plugins.plugin_utils.audit.canonical import line_hash, parse_line, plain
from ansible_collections.relops.release.plugins.plugin_utils.audit.redaction import (
    DEFAULT_KEY_PATTERNS,
    DEFAULT_VALUE_PATTERNS,
    NO_LOG_MARKER,
    Redactor,
    validate_patterns,
)
from ansible_collections.relops.release.plugins.plugin_utils.audit.sealing import (
    CheckpointSigner,
    Sealer,
    load_hmac_key,
    load_signing_key,
    load_transit_signing_key,
)
from ansible_collections.relops.release.plugins.plugin_utils.audit.sinks import (
    HttpSink,
    Relay,
    Sink,
    Spool,
    SyslogSink,
    spool_name,
)
from ansible_collections.relops.release.plugins.plugin_utils.audit.trail import (
    TAMPER_EVENT,
    Damage,
    Head,
    Trail,
    TrailSettings,
)
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

# The result key under which relops.release modules hand structured events (decision records, ...) to the trail.
AUDIT_RESULT_KEY = "relops_audit"
FSYNC_POLICIES = ("event", "task", "play")


@dataclass
class RecorderSettings:
    path: str
    fsync: str = "task"
    rotate_size: int = 0
    rotate_daily: bool = False
    hmac_key: Optional[str] = None
    hmac_key_file: Optional[str] = None
    signing_key: Optional[str] = None
    signing_transit_key: Optional[str] = None
    checkpoint_every: int = 1000
    redact_keys: List[str] = field(default_factory=list)
    redact_values: List[str] = field(default_factory=list)
    syslog_url: Optional[str] = None
    syslog_ca_file: Optional[str] = None
    syslog_facility: str = "local0"
    http_url: Optional[str] = None
    http_format: str = "hec"
    http_token: Optional[str] = None
    http_validate_certs: bool = True
    spool_dir: Optional[str] = None
    spool_max_size: int = 256 * 1024 * 1024
    sink_retry_interval: float = 5.0
    sink_timeout: float = 5.0


def build_redactor(settings: RecorderSettings) -> Redactor:
    values = {**DEFAULT_VALUE_PATTERNS, "custom": "|".join("(?:%s)" % p for p in settings.redact_values)}
    if not settings.redact_values:
        del values["custom"]
    keys = [*DEFAULT_KEY_PATTERNS, *settings.redact_keys]
    validate_patterns(keys, values)
    return Redactor(keys, values)


def build_sinks(settings: RecorderSettings) -> List[Sink]:
    sinks: List[Sink] = []
    if settings.syslog_url:
        sinks.append(
            SyslogSink(settings.syslog_url, settings.syslog_ca_file, settings.syslog_facility, settings.sink_timeout)
        )
    if settings.http_url:
        sinks.append(
            HttpSink(
                settings.http_url,
                settings.http_format,
                settings.http_token,
                settings.http_validate_certs,
                timeout=settings.sink_timeout,
            )
        )
    return sinks


def checkpoint_signer(settings: RecorderSettings) -> Optional[CheckpointSigner]:
    """The key file, or the transit key, that signs checkpoints; None writes them unsigned."""
    if settings.signing_key and settings.signing_transit_key:
        raise ValueError(
            "audit signing_key %s and signing_transit_key %s are both set; checkpoints are signed by one key, "
            "keep one of them" % (settings.signing_key, settings.signing_transit_key)
        )
    if settings.signing_transit_key:
        return load_transit_signing_key(settings.signing_transit_key)
    return load_signing_key(settings.signing_key) if settings.signing_key else None


class Recorder:
    """Writes one run's events to the trail and its sinks."""

    def __init__(self, settings: RecorderSettings, anchors: Optional[LedgerAnchors] = None) -> None:
        if settings.fsync not in FSYNC_POLICIES:
            raise ValueError("fsync %r must be one of %s" % (settings.fsync, ", ".join(FSYNC_POLICIES)))
        if settings.checkpoint_every < 0:
            raise ValueError("checkpoint_every %r must be 0 (run end only) or more" % settings.checkpoint_every)
        self.settings = settings
        self.redactor = build_redactor(settings)
        self.sealer = Sealer(load_hmac_key(settings.hmac_key, settings.hmac_key_file), checkpoint_signer(settings))
        self.trail = Trail(TrailSettings(settings.path, settings.rotate_size, settings.rotate_daily), self.sealer)
        spool_root = settings.spool_dir or self.trail.path + ".spool"
        self.relays = [
            Relay(
                sink,
                Spool(os.path.join(spool_root, spool_name(sink)), settings.spool_max_size),
                settings.sink_retry_interval,
            )
            for sink in build_sinks(settings)
        ]
        self.run_id = ""
        self.actor: Dict[str, Any] = {}
        self.playbook: Dict[str, Any] = {}
        self._unsealed_from: Optional[int] = None
        self._since_checkpoint = 0
        self._in_sinks = False
        # Spool events (a queue that filled up) found while a line is appended under the trail's lock;
        # written once that append is done.
        self._spool_events: List[Dict[str, Any]] = []
        # Where every checkpoint is anchored (the ledger), and what went wrong doing it or checking the tail.
        self.anchors = anchors
        self.warnings: List[str] = []
        self._adopt_pending = False
        self.trail_anchors: List[Anchor] = []
        self.trail.damage_record = self._damage_record

    def begin_run(self, actor: Actor, playbook: str, revision: Optional[str]) -> None:
        self.run_id = actor.run_id
        self.actor = actor.as_dict()
        del self.actor["run_id"]
        self.set_playbook(playbook, revision)
        if self.anchors is not None:
            try:
                self.trail_anchors = self.anchors.standing(self.trail.path)
                self.trail.expected_anchors = self.trail_anchors
            except Exception as exc:
                self.warnings.append(
                    "the ledger's anchors of %s were not read (%s): this run's start did not check the trail for a "
                    "cut tail" % (self.trail.path, exc)
                )
            self._adopt_pending = True

    def set_playbook(self, path: str, revision: Optional[str]) -> None:
        self.playbook = {"path": path, "revision": revision} if revision else {"path": path}

    def record(self, event: str, boundary: str, fields: Mapping[str, Any]) -> None:
        """Record a playbook, play or task event; ``args`` are redacted, and hidden under no_log."""
        values = dict(fields)
        if "args" in values:
            hidden = values.pop("no_log", False)
            values["args"] = NO_LOG_MARKER if hidden else self.redactor.redact(plain(values["args"]))
        self._write(event, boundary, values)

    def record_result(
        self, fields: Mapping[str, Any], result: Mapping[str, Any], task_args: Any, task_no_log: bool, item: bool
    ) -> None:
        """Record a task result (or a loop item's) and the structured events the module returned."""
        values = dict(fields)
        values.pop("no_log", None)
        hidden = task_no_log or bool(result.get("_ansible_no_log"))
        invocation = result.get("invocation")
        args = invocation.get("module_args", task_args) if isinstance(invocation, Mapping) else task_args
        body = _without_plumbing(result)
        body.pop(AUDIT_RESULT_KEY, None)
        if isinstance(body.get("results"), list):
            body["results"] = [
                _without_plumbing(each) if isinstance(each, Mapping) else each for each in body["results"]
            ]
        if isinstance(args, Mapping):
            args = _without_plumbing(args)
        if hidden:
            values.update(args=NO_LOG_MARKER, result=NO_LOG_MARKER)
            if item:
                values["item"] = NO_LOG_MARKER
        else:
            values.update(args=self.redactor.redact(plain(args)), result=self.redactor.redact(plain(body)))
            if item:
                values["item"] = self.redactor.redact(plain(result.get("_ansible_item_label", result.get("item"))))
        kind = ("item_" if item else "runner_") + str(values["outcome"])
        self._write(kind, "event", values)
        if not item:
            self._record_module_events(values, result.get(AUDIT_RESULT_KEY), hidden)

    def _record_module_events(self, values: Mapping[str, Any], events: Any, hidden: bool) -> None:
        if isinstance(events, Mapping):
            events = [events]
        if not isinstance(events, list):
            return
        context = {key: values[key] for key in ("play", "task", "task_uuid", "action", "host") if key in values}
        for event in events:
            data = event if isinstance(event, Mapping) else {"value": event}
            self._write(
                "module_event",
                "event",
                {
                    **context,
                    "kind": str(data.get("kind", "event")),
                    "data": NO_LOG_MARKER if hidden else self.redactor.redact(plain(data)),
                },
            )

    def end_run(self) -> List[str]:
        """Seal the run with a checkpoint, try every sink once more, and say what is still waiting."""
        warnings: List[str] = []
        self.checkpoint()
        # The final checkpoint itself may fill a spool; the event saying so is then sealed by one more.
        while self._unsealed_from is not None:
            self.checkpoint()
        warnings.extend(self.take_warnings())
        self._in_sinks = True
        try:
            for relay in self.relays:
                relay.flush(force=True)
                pending = relay.spool.pending_lines()
                if pending:
                    warnings.append(
                        "%d audit event(s) wait in %s for %s, which is down; they are sent, in order, "
                        "when it is reachable again (next run)" % (pending, relay.spool.directory, relay.sink.name)
                    )
        finally:
            self._in_sinks = False
            for relay in self.relays:
                relay.close()
            self.trail.close()
        return warnings

    def checkpoint(self) -> None:
        def describe(record: Dict[str, Any], head: Head) -> None:
            # The range this checkpoint vouches for: this run's lines and the others' lines it checked.
            starts = [seq for seq in (self._unsealed_from, self.trail.checked_from) if seq is not None]
            record["checkpoint"] = {
                "first_seq": min(starts) if starts else head.seq,
                "last_seq": head.seq,
                "head": head.digest,
                "key_id": self.sealer.key_id,
            }

        line = self.trail.append(self._base("checkpoint"), True, describe, self._spool)
        self._unsealed_from = None
        self._since_checkpoint = 0
        self._after_append()
        self._anchor(parse_line(line), line_hash(line))
        self._write_spool_events()

    def _damage_record(self, damage: Damage) -> Dict[str, Any]:
        record = self._base(TAMPER_EVENT)
        record["damage"] = damage.as_dict()
        return record

    def _after_append(self) -> None:
        """Report damage the trail recorded before this append; anchor the checkpoint a run's start found."""
        found, self.trail.found = self.trail.found, []
        for damage, seq in found:
            self.warnings.append(
                "the audit trail's tail did not verify (%s: %s); recorded as %s seq %d instead of sealing it. "
                "Investigate with relops.release.audit_verify on %s"
                % (damage.kind, damage.detail, TAMPER_EVENT, seq, self.trail.path)
            )
            if damage.cut and self.anchors is not None:
                try:
                    self.anchors.mark_cut(damage.cut, seq)
                except Exception as exc:
                    self.warnings.append("the cut anchors were not marked in the ledger: %s" % exc)
        if self._adopt_pending:
            self._adopt_pending = False
            tail = self.trail.tail_checkpoint
            standing = {(anchor.seq, anchor.head) for anchor in self.trail_anchors}
            clean = not any(damage.kind != "cut" for damage, _seq in found)
            if tail is not None and clean and (tail[0]["seq"], tail[1]) not in standing:
                # A checkpoint the ledger missed (down at the time, or a trail older than anchoring): the tail
                # after it verified, so it becomes the anchor the next cut is measured against.
                self._anchor(tail[0], tail[1])

    def _anchor(self, event: Dict[str, Any], head: str) -> None:
        if self.anchors is None:
            return
        try:
            self.anchors.record([Anchor.of_checkpoint(self.trail.path, event, head)], self.run_id)
        except Exception as exc:
            self.warnings.append(
                "checkpoint seq %s of %s was not anchored in the ledger (%s); a gate that requires the audit trail "
                "refuses until a later run anchors it" % (event.get("seq"), self.trail.path, exc)
            )

    def take_warnings(self) -> List[str]:
        warnings, self.warnings = self.warnings, []
        return warnings

    def _base(self, event: str) -> Dict[str, Any]:
        return {"event": event, "run_id": self.run_id, "actor": self.actor, "playbook": self.playbook}

    def _write(self, event: str, boundary: str, fields: Mapping[str, Any]) -> None:
        record = self._base(event)
        record.update(fields)
        self.trail.append(record, self._needs_sync(boundary), None, self._spool)
        self._after_append()
        if self._unsealed_from is None:
            self._unsealed_from = self.trail.last_seq
        self._since_checkpoint += 1
        self._write_spool_events()
        if self.settings.checkpoint_every and self._since_checkpoint >= self.settings.checkpoint_every:
            self.checkpoint()
        self._deliver()

    def _write_spool_events(self) -> None:
        while self._spool_events:
            self._write("sink_spool_full", "task", self._spool_events.pop(0))

    def _needs_sync(self, boundary: str) -> bool:
        policy = self.settings.fsync
        return policy == "event" or (policy == "task" and boundary != "event") or boundary == "play"

    def _spool(self, line: bytes) -> None:
        for relay in self.relays:
            started = relay.spool.append(line)
            if started is not None:
                self._spool_events.append({"sink": relay.sink.name, "spool": relay.spool.directory, **started})

    def _deliver(self) -> None:
        if self._in_sinks:
            return
        self._in_sinks = True
        try:
            for relay in self.relays:
                change = relay.flush()
                if change is not None:
                    event, fields = change
                    self._write(event, "task", fields)
                if relay.down_since is None:
                    dropped = relay.spool.take_dropped()
                    if dropped is not None:
                        self._write("sink_spool_dropped", "task", {"sink": relay.sink.name, **dropped})
        finally:
            self._in_sinks = False


def _without_plumbing(values: Mapping[str, Any]) -> Dict[str, Any]:
    """Drop Ansible's internal keys (``_ansible_*``, ``invocation``): how Ansible ran the task, not what it did."""
    return {key: value for key, value in values.items() if key != "invocation" and not str(key).startswith("_ansible")}


def is_rescued(task: Any) -> bool:
    """Whether a failed task sits (at any depth) in the main section of a block that has a rescue section."""
    node = task
    parent = getattr(node, "_parent", None)
    while parent is not None:
        if getattr(parent, "rescue", None) and any(
            getattr(member, "_uuid", None) == node._uuid for member in getattr(parent, "block", None) or []
        ):
            return True
        node, parent = parent, getattr(parent, "_parent", None)
    return False

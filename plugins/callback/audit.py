# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: audit
type: aggregate
short_description: Tamper-evident audit trail of every play, task and result, with remote copies
version_added: 0.1.0
description:
  - Writes one canonical JSON line per playbook start and end, play start, task and handler start, task result
    (ok, changed, failed, ignored, rescued, skipped, unreachable, async failed), loop item, host statistics, and
    each structured event a relops.release module returns under its C(relops_audit) result key.
  - Every line carries C(seq), C(prev) (the SHA-256 of the previous line, across runs and rotated files), C(ts),
    C(run_id) and C(actor) (controller user, C(SUDO_USER), AWX user and job when present). Signed checkpoints
    are written every O(checkpoint_every) events and at the end of every run.
  - Arguments and results are redacted before they are written; C(no_log) hides the arguments as well as the
    result. Verify a trail with M(relops.release.audit_verify).
  - Several ansible-playbook processes may share one trail; an exclusive file lock keeps one chain.
  - At playbook start the callback sets E(RELOPS_RUN_ID) so that every task and the release ledger use the same
    run id.
  - Before it appends, the writer checks the lines written since the last checkpoint (chain, MACs, the
    signature of its own checkpoints) and that the trail still holds the newest checkpoint anchored in the
    ledger; what does not hold is recorded as a C(tamper_detected) event instead of being sealed, and a
    line torn by a crash is ended so that the chain goes on.
  - Every checkpoint is also stored in the release ledger (table C(audit_anchors)), so a cut at the trail's
    end is caught against the ledger. When the run starts, the callback exports E(RELOPS_AUDIT_TRAIL) (the
    trail's path) to the tasks, which the gates' "audit required" check reads.
  - Works beside any stdout callback; it must be enabled, for example with
    C(callbacks_enabled = relops.release.audit) in ansible.cfg.
author:
  - relops.release maintainers (@relops)
requirements:
  - cryptography (signed checkpoints)
  - requests (HTTP sink)
options:
  path:
    description:
      - The trail file. Rotated files sit beside it as V(<path>.<UTC time>).
      - Defaults to V($XDG_STATE_HOME/relops/audit/audit.jsonl) (V(~/.local/state/relops/audit/audit.jsonl)).
    type: path
    env:
      - name: RELOPS_AUDIT_PATH
    ini:
      - section: relops_audit
        key: path
  fsync:
    description:
      - When the trail is forced to disk. V(event) after every line; V(task) at every task, handler and play start
        and at the end; V(play) at every play start and at the end. Checkpoints are always synced.
    type: str
    choices: [event, task, play]
    default: task
    env:
      - name: RELOPS_AUDIT_FSYNC
    ini:
      - section: relops_audit
        key: fsync
  rotate_size:
    description: Rotate the trail when it reaches this many bytes; V(0) never rotates by size.
    type: int
    default: 0
    env:
      - name: RELOPS_AUDIT_ROTATE_SIZE
    ini:
      - section: relops_audit
        key: rotate_size
  rotate_daily:
    description: Rotate the trail when its first line is from an earlier UTC day.
    type: bool
    default: false
    env:
      - name: RELOPS_AUDIT_ROTATE_DAILY
    ini:
      - section: relops_audit
        key: rotate_daily
  hmac_key:
    description: A secret; when set, every line carries an HMAC-SHA256 C(mac). Prefer O(hmac_key_file).
    type: str
    env:
      - name: RELOPS_AUDIT_HMAC_KEY
    ini:
      - section: relops_audit
        key: hmac_key
  hmac_key_file:
    description: A file holding the HMAC key (surrounding whitespace ignored). Wins over O(hmac_key).
    type: path
    env:
      - name: RELOPS_AUDIT_HMAC_KEY_FILE
    ini:
      - section: relops_audit
        key: hmac_key_file
  signing_key:
    description:
      - An unencrypted Ed25519 private key in PEM (C(openssl genpkey -algorithm ed25519 -out audit.key)) that signs
        checkpoints. Without it checkpoints are written unsigned.
    type: path
    env:
      - name: RELOPS_AUDIT_SIGNING_KEY
    ini:
      - section: relops_audit
        key: signing_key
  signing_transit_key:
    description:
      - An Ed25519 key in OpenBao's (or HashiCorp Vault's) transit engine, as C(<mount>/<key>)
        (C(transit/audit-checkpoints)), that signs checkpoints with its latest version; the private key never
        leaves the server. The server and token are E(BAO_ADDR) and E(BAO_TOKEN) (or E(VAULT_ADDR) and
        E(VAULT_TOKEN)). Exclusive with O(signing_key). See C(docs/secrets.md).
      - A sealed or unreachable server when the run starts means no trail is written (an error names the key's
        path); during the run, the checkpoint it could not sign is not written and the error says why.
    type: str
    env:
      - name: RELOPS_AUDIT_SIGNING_TRANSIT_KEY
    ini:
      - section: relops_audit
        key: signing_transit_key
  checkpoint_every:
    description: Write a checkpoint after this many events of a run (and always at the run's end).
    type: int
    default: 1000
    env:
      - name: RELOPS_AUDIT_CHECKPOINT_EVERY
    ini:
      - section: relops_audit
        key: checkpoint_every
  redact_keys:
    description:
      - Extra regular expressions matched (case-insensitively, anywhere) against argument and result key names;
        a matching key's value is replaced by V([REDACTED key <name>]). Added to the built-in list (password,
        passphrase, secret, token, private_key, api_key, access_key, credential, authorization, cookie, ...).
    type: list
    elements: str
    default: []
    env:
      - name: RELOPS_AUDIT_REDACT_KEYS
    ini:
      - section: relops_audit
        key: redact_keys
  redact_values:
    description:
      - Extra regular expressions; any match inside a string value is replaced by V([REDACTED custom]). Added to
        the built-in patterns (PEM blocks, bearer and basic tokens, AWS, GCP, GitHub and Slack keys, JWTs,
        passwords in URLs).
    type: list
    elements: str
    default: []
    env:
      - name: RELOPS_AUDIT_REDACT_VALUES
    ini:
      - section: relops_audit
        key: redact_values
  syslog_url:
    description: Also send every line to this syslog receiver, V(tcp://host:port) or V(tls://host:port) (RFC 5424, octet counting).
    type: str
    env:
      - name: RELOPS_AUDIT_SYSLOG_URL
    ini:
      - section: relops_audit
        key: syslog_url
  syslog_ca_file:
    description: CA bundle that signs the TLS syslog receiver's certificate (the system store otherwise).
    type: path
    env:
      - name: RELOPS_AUDIT_SYSLOG_CA_FILE
    ini:
      - section: relops_audit
        key: syslog_ca_file
  syslog_facility:
    description: Syslog facility of the messages.
    type: str
    default: local0
    env:
      - name: RELOPS_AUDIT_SYSLOG_FACILITY
    ini:
      - section: relops_audit
        key: syslog_facility
  http_url:
    description: Also send every line to this HTTP endpoint (a Splunk HEC C(/services/collector/event) URL or a webhook).
    type: str
    env:
      - name: RELOPS_AUDIT_HTTP_URL
    ini:
      - section: relops_audit
        key: http_url
  http_format:
    description: V(hec) posts Splunk HEC event envelopes; V(webhook) posts a JSON array of trail events.
    type: str
    choices: [hec, webhook]
    default: hec
    env:
      - name: RELOPS_AUDIT_HTTP_FORMAT
    ini:
      - section: relops_audit
        key: http_format
  http_token:
    description: HEC token (sent as C(Authorization Splunk <token>)) or webhook bearer token.
    type: str
    env:
      - name: RELOPS_AUDIT_HTTP_TOKEN
    ini:
      - section: relops_audit
        key: http_token
  http_validate_certs:
    description: Validate the HTTPS endpoint's certificate.
    type: bool
    default: true
    env:
      - name: RELOPS_AUDIT_HTTP_VALIDATE_CERTS
    ini:
      - section: relops_audit
        key: http_validate_certs
  spool_dir:
    description: Where lines wait for a sink that is down. Defaults to V(<path>.spool).
    type: path
    env:
      - name: RELOPS_AUDIT_SPOOL_DIR
    ini:
      - section: relops_audit
        key: spool_dir
  spool_max_size:
    description:
      - Largest size in bytes of each sink's spool; V(0) means no cap.
      - When a sink's spool is full, new lines are not queued for that sink. The trail records
        C(sink_spool_full) when that starts and C(sink_spool_dropped) (first and last seq, count, bytes) once the
        spool has drained, and that record is forwarded too, so the sink sees the gap. The trail file keeps every
        line; only the sink's copy has the gap.
    type: int
    default: 268435456
    env:
      - name: RELOPS_AUDIT_SPOOL_MAX_SIZE
    ini:
      - section: relops_audit
        key: spool_max_size
  sink_retry_interval:
    description: Seconds to wait before trying a sink that was down again (it is always tried at the run's end).
    type: float
    default: 5.0
    env:
      - name: RELOPS_AUDIT_SINK_RETRY_INTERVAL
    ini:
      - section: relops_audit
        key: sink_retry_interval
  ledger_anchors:
    description:
      - Store every checkpoint's seq and head hash in the release ledger, and check at each run's start that
        the trail still holds the newest one. Turning it off leaves a cut at the trail's end unnoticed, and
        gates that require the audit trail refuse.
    type: bool
    default: true
    env:
      - name: RELOPS_AUDIT_LEDGER_ANCHORS
    ini:
      - section: relops_audit
        key: ledger_anchors
  ledger_url:
    description:
      - The ledger that holds the anchors. Without it, the same as the tasks use without a C(ledger_url)
        option - the C(relops_ledger_url) extra variable, then E(RELOPS_LEDGER_URL), then the default
        SQLite ledger. Inventory variables are not visible to a callback, so a ledger named only there must be
        given here (or in E(RELOPS_LEDGER_URL)).
    type: str
    env:
      - name: RELOPS_AUDIT_LEDGER_URL
    ini:
      - section: relops_audit
        key: ledger_url
  sink_timeout:
    description: Seconds to wait for a sink to connect or answer.
    type: float
    default: 5.0
    env:
      - name: RELOPS_AUDIT_SINK_TIMEOUT
    ini:
      - section: relops_audit
        key: sink_timeout
"""

import atexit
import os
import subprocess
import threading
import time
from typing import Any, Dict, List, Optional

from ansible.plugins.callback import CallbackBase

from ansible_collections.relops.release.plugins.plugin_utils.audit.anchors import LedgerAnchors
from ansible_collections.relops.release.plugins.plugin_utils.audit.readiness import AUDIT_ERROR_ENV, AUDIT_TRAIL_ENV
from ansible_collections.relops.release.plugins.plugin_utils.audit.recorder import (
    Recorder,
    RecorderSettings,
    is_rescued,
)
from ansible_collections.relops.release.plugins.plugin_utils.ledger import resolve_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.runctx import RUN_ID_ENV, current_actor

try:
    from ansible.utils.vars import load_extra_vars
except ImportError:  # pragma: no cover - present in every supported ansible-core
    load_extra_vars = None


class CallbackModule(CallbackBase):  # type: ignore[misc]  # ansible-core ships no types
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "relops.release.audit"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display: Any = None) -> None:
        super().__init__(display=display)
        self._recorder: Optional[Recorder] = None
        self._broken = False
        self._lock = threading.RLock()
        self._starts: Dict[Any, float] = {}
        self._play_name: Optional[str] = None
        self._playbooks: List[str] = []
        self._ended = False

    # -- setup -------------------------------------------------------------------------------------------------

    def _ready(self) -> Optional[Recorder]:
        if self._recorder is None and not self._broken:
            try:
                self._recorder = Recorder(self._settings(), self._anchors())
            except Exception as exc:
                self._broken = True
                # Task workers fork later and inherit this: the "audit required" check names the cause.
                os.environ[AUDIT_ERROR_ENV] = str(exc)
                os.environ.pop(AUDIT_TRAIL_ENV, None)
                self._display.error("relops.release.audit: the audit trail is NOT being written: %s" % exc)
        return self._recorder

    def _anchors(self) -> Optional[LedgerAnchors]:
        if not self.get_option("ledger_anchors"):
            return None
        extra_vars = getattr(load_extra_vars, "extra_vars", None) or {}
        url = resolve_ledger_url(self.get_option("ledger_url"), extra_vars)
        return LedgerAnchors(url, applied_by="relops.release.audit")

    def _show_warnings(self, recorder: Recorder) -> None:
        for warning in recorder.take_warnings():
            self._display.warning("relops.release.audit: %s" % warning)

    def _settings(self) -> RecorderSettings:
        return RecorderSettings(
            path=self.get_option("path") or _default_path(),
            fsync=self.get_option("fsync"),
            rotate_size=self.get_option("rotate_size"),
            rotate_daily=self.get_option("rotate_daily"),
            hmac_key=self.get_option("hmac_key"),
            hmac_key_file=self.get_option("hmac_key_file"),
            signing_key=self.get_option("signing_key"),
            signing_transit_key=self.get_option("signing_transit_key"),
            checkpoint_every=self.get_option("checkpoint_every"),
            redact_keys=self.get_option("redact_keys") or [],
            redact_values=self.get_option("redact_values") or [],
            syslog_url=self.get_option("syslog_url"),
            syslog_ca_file=self.get_option("syslog_ca_file"),
            syslog_facility=self.get_option("syslog_facility"),
            http_url=self.get_option("http_url"),
            http_format=self.get_option("http_format"),
            http_token=self.get_option("http_token"),
            http_validate_certs=self.get_option("http_validate_certs"),
            spool_dir=self.get_option("spool_dir"),
            spool_max_size=self.get_option("spool_max_size"),
            sink_retry_interval=self.get_option("sink_retry_interval"),
            sink_timeout=self.get_option("sink_timeout"),
        )

    def _record(self, event: str, boundary: str = "event", **fields: Any) -> None:
        with self._lock:
            recorder = self._ready()
            if recorder is None:
                return
            try:
                recorder.record(event, boundary, fields)
            except Exception as exc:
                if event == "playbook_start":
                    # The tasks' "audit required" check names this instead of a trail that is not written.
                    os.environ[AUDIT_ERROR_ENV] = "event %s not recorded: %s" % (event, exc)
                    os.environ.pop(AUDIT_TRAIL_ENV, None)
                self._display.error("relops.release.audit: event %s not recorded: %s" % (event, exc))
            self._show_warnings(recorder)

    # -- playbook and play -------------------------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook: Any) -> None:
        path = os.path.abspath(playbook._file_name)
        self._playbooks.append(path)
        recorder = self._ready()
        if recorder is None:
            return
        if len(self._playbooks) == 1:
            extra_vars = getattr(load_extra_vars, "extra_vars", None) or {}
            actor = current_actor(extra_vars)
            # Task workers fork from this process later and inherit the variable,
            # so the ledger and every action see this run id.
            os.environ.setdefault(RUN_ID_ENV, actor.run_id)
            recorder.begin_run(actor, path, _git_revision(path))
            atexit.register(self._end_unfinished)
        else:
            recorder.set_playbook(path, _git_revision(path))
        self._record("playbook_start", "play")
        if recorder.trail.last_seq:
            # The trail is written for this run: tasks (the gates' audit check) find it here.
            os.environ[AUDIT_TRAIL_ENV] = recorder.trail.path
            os.environ.pop(AUDIT_ERROR_ENV, None)

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._play_name = play.get_name()
        self._record("play_start", "play", play=self._play_name, hosts=_as_list(play.hosts))

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._record("task_start", "task", **self._task_fields(task))

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._record("handler_start", "task", **self._task_fields(task))

    def v2_playbook_on_stats(self, stats: Any) -> None:
        hosts = {host: stats.summarize(host) for host in sorted(stats.processed)}
        failed = any(summary["failures"] or summary["unreachable"] for summary in hosts.values())
        self._record("stats", "play", hosts=hosts, outcome="failed" if failed else "ok")
        self._finish("failed" if failed else "success")

    def _end_unfinished(self) -> None:
        """At interpreter exit without stats (interrupted, or a fatal error): seal what was written."""
        if not self._ended and self._recorder is not None:
            self._finish("aborted")

    def _finish(self, outcome: str) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
            self._record("playbook_end", "play", outcome=outcome, playbooks=self._playbooks)
            recorder = self._recorder
            if recorder is None:
                return
            try:
                for warning in recorder.end_run():
                    self._display.warning("relops.release.audit: %s" % warning)
            except Exception as exc:
                self._display.error("relops.release.audit: the run's end was not sealed: %s" % exc)

    # -- results -----------------------------------------------------------------------------------------------

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        self._starts[(host.get_name(), task._uuid)] = time.monotonic()

    def v2_runner_on_ok(self, result: Any) -> None:
        self._record_result(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        # ignore_errors wins: ansible-core counts an ignored failure inside a rescued block as ignored.
        outcome = "ignored" if ignore_errors else "rescued" if is_rescued(result._task) else "failed"
        self._record_result(result, outcome)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record_result(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record_result(result, "unreachable")

    def v2_runner_on_async_failed(self, result: Any) -> None:
        self._record_result(result, "async_failed")

    def v2_runner_item_on_ok(self, result: Any) -> None:
        self._record_result(result, "changed" if result._result.get("changed") else "ok", item=True)

    def v2_runner_item_on_failed(self, result: Any) -> None:
        self._record_result(result, "failed", item=True)

    def v2_runner_item_on_skipped(self, result: Any) -> None:
        self._record_result(result, "skipped", item=True)

    def _record_result(self, result: Any, outcome: str, item: bool = False) -> None:
        task = result._task
        host = result._host.get_name()
        started = self._starts.get((host, task._uuid))
        if not item:
            self._starts.pop((host, task._uuid), None)
        fields = self._task_fields(task)
        fields.update(
            host=host,
            outcome=outcome,
            changed=bool(result._result.get("changed", False)),
            duration=round(time.monotonic() - started, 6) if started is not None else None,
        )
        with self._lock:
            recorder = self._ready()
            if recorder is None:
                return
            try:
                recorder.record_result(fields, result._result, task.args, bool(task.no_log) is True, item)
            except Exception as exc:
                self._display.error("relops.release.audit: result of %s not recorded: %s" % (fields["task"], exc))
            self._show_warnings(recorder)

    def _task_fields(self, task: Any) -> Dict[str, Any]:
        return {
            "play": self._play_name,
            "task": task.get_name(),
            "task_uuid": task._uuid,
            "action": task.action,
            "handler": _is_handler(task),
            "args": task.args,
            "no_log": task.no_log is not False,
        }


def _is_handler(task: Any) -> bool:
    return type(task).__name__ == "Handler"


def _as_list(hosts: Any) -> List[str]:
    return [str(host) for host in hosts] if isinstance(hosts, (list, tuple)) else [str(hosts)]


def _default_path() -> str:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "relops", "audit", "audit.jsonl")


def _git_revision(path: str) -> Optional[str]:
    """The commit the playbook's repository is at, when it is in one (None otherwise)."""
    try:
        done = subprocess.run(
            ["git", "-C", os.path.dirname(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None

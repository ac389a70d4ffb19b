# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of relops.release's controller-side action plugins.

It validates the task's arguments against the plugin's one argument spec (the
same spec the documentation describes), turns the collection's own errors into
a failed task with the message intact, and opens the ledger the task names.
"""

from __future__ import annotations

import abc
from typing import Any, Dict, List, Optional, Tuple

from ansible.plugins.action import ActionBase

from ansible_collections.relops.release.plugins.plugin_utils.ledger import (
    LEDGER_URL_VAR,
    Ledger,
    LedgerError,
    LedgerURL,
    decision_record,
    open_existing_ledger,
    open_ledger,
    resolve_ledger_url,
)
from ansible_collections.relops.release.plugins.plugin_utils.runctx import (
    AWX_VARS,
    adhoc_module,
    current_actor,
    playbook_paths,
)


class RelopsActionBase(ActionBase):
    """Controller-side action: no connection to the target is needed."""

    _requires_connection = False
    argument_spec: Dict[str, Dict[str, Any]] = {}

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        task_vars = task_vars or {}
        result: Dict[str, Any] = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=self.argument_spec)
        self.task_vars = task_vars
        self.actor = current_actor(self.templated_vars(AWX_VARS))
        self.audit_records: List[Dict[str, Any]] = []
        self.touched_ledger: Optional[LedgerURL] = None
        try:
            result.update(self.execute(args))
        except LedgerError as exc:
            result.update(failed=True, msg=str(exc))
        self.finish_adhoc_run(result)
        if self.audit_records:
            # The relops.release.audit callback writes these as module_event lines (docs/audit.md).
            result["relops_audit"] = self.audit_records
        return result

    @abc.abstractmethod
    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        """Do the plugin's work; return the result keys."""

    def task_var(self, name: str, default: Any = None) -> Any:
        """A variable as the play sees it: templated, like the task's own options.

        task_vars holds what the inventory and play wrote, so ``"{{ ledger_dir }}/ledger.db"`` would
        otherwise reach the collection as literal text.
        """
        if name not in self.task_vars:
            return default
        return self._templar.template(self.task_vars[name])

    def templated_vars(self, names: Tuple[str, ...]) -> Dict[str, Any]:
        """The named variables that are set, each templated (see task_var)."""
        return {name: self.task_var(name) for name in names if name in self.task_vars}

    def local_path(self, path: str) -> str:
        """A controller path as every option of this collection reads it: relative to the playbook's directory.

        The one rule (docs/paths.md), the same as ansible-core's own controller-side options: the
        current directory differs between a laptop, CI and AWX, the playbook's directory does not.
        ``~`` and absolute paths are kept.
        """
        return str(self._loader.path_dwim(path))

    def local_paths(self, paths: List[str]) -> List[str]:
        """local_path for each path (or glob pattern) of a list option."""
        return [self.local_path(path) for path in paths]

    def with_local_paths(self, options: Optional[Dict[str, Any]], keys: Tuple[str, ...]) -> Optional[Dict[str, Any]]:
        """A copy of an options mapping with the named path options resolved by local_path."""
        if options is None:
            return None
        return dict(options, **{key: self.local_path(options[key]) for key in keys if options.get(key)})

    def optional_local_path(self, path: Optional[str]) -> Optional[str]:
        """local_path for an option that may be unset."""
        return None if not path else self.local_path(path)

    def playbook_dir(self) -> str:
        """The directory relative controller paths are read from (see local_path)."""
        return str(self._loader.get_basedir())

    def ledger_url(self, args: Dict[str, Any]) -> LedgerURL:
        """The ledger this task names: its option, else the templated relops_ledger_url, else the default."""
        return resolve_ledger_url(args.get("ledger_url"), self.templated_vars((LEDGER_URL_VAR,)))

    @property
    def check_mode(self) -> bool:
        return bool(self._task.check_mode)

    @property
    def diff_mode(self) -> bool:
        return bool(self._task.diff)

    def open_task_ledger(self, args: Dict[str, Any], touch: bool = True) -> Ledger:
        """Open the ledger this task names, creating or upgrading it on first use, and note the run."""
        url = self.ledger_url(args)
        ledger = open_ledger(url, applied_by=self.actor.display())
        if touch:
            self.touch_run(ledger)
        return ledger

    def open_task_ledger_readonly(self, args: Dict[str, Any], allow_older: bool = False) -> Optional[Ledger]:
        """Open the task's ledger without creating or upgrading it; None when it does not exist yet."""
        url = self.ledger_url(args)
        return open_existing_ledger(url, allow_older=allow_older)

    def audit(self, kind: str, **data: Any) -> None:
        """Queue a structured record of what this task decided or found, for the audit trail."""
        self.audit_records.append({"kind": kind, **data})

    def record_decision(
        self, args: Dict[str, Any], gate: str, decision: str, reasons: List[str], inputs_digest: str
    ) -> Dict[str, Any]:
        """Return a gate's decision record, stored in the ledger under ``args["subject"]``.

        Check mode, or a gate asked without a subject, returns the same record without storing it.
        """
        if not args.get("subject") or self.check_mode:
            record = decision_record(decision, reasons, args.get("policy_version"), inputs_digest)
        else:
            with self.open_task_ledger(args) as ledger:
                record = ledger.record_decision(
                    self.actor,
                    gate,
                    args["subject"],
                    decision,
                    reasons,
                    policy_version=args.get("policy_version"),
                    inputs_digest=inputs_digest,
                )
        self.audit("decision", gate=gate, subject=args.get("subject"), **record)
        return record

    def finish_adhoc_run(self, result: Dict[str, Any]) -> None:
        """An ad-hoc ``ansible -m`` command is a whole run: record how it ended, or it stays ``running``.

        A playbook's run is finished by ledger_run (the release role) or taken as aborted when its
        process is gone; an ad-hoc command has no later task to do either. With several hosts the
        command runs this once per host, and one failed host keeps the run failed.
        """
        module = adhoc_module()
        if self.touched_ledger is None or module is None:
            return
        try:
            with open_ledger(self.touched_ledger, applied_by=self.actor.display()) as ledger:
                before = ledger.get_run(self.actor.run_id)
                if not result.get("failed") and before is not None and before["status"] != "running":
                    return  # finished already: by an earlier host, or by ledger_run with its own outcome
                ledger.finish_run(self.actor, "failed" if result.get("failed") else "successful", {"ad_hoc": module})
        except LedgerError as exc:
            result.setdefault("warnings", []).append("the ad-hoc run could not be marked finished: %s" % exc)

    def touch_run(self, ledger: Ledger) -> None:
        self.touched_ledger = ledger.url
        playbooks = playbook_paths()
        ledger.touch_run(
            self.actor,
            playbook=", ".join(playbooks) if playbooks else None,
            play=self.task_var("ansible_play_name"),
        )

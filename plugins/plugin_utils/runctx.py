# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who is running what: the run id and the actor of the current ansible-playbook.

Every ledger row and audit event names the run that wrote it and the person or
job behind it. Action plugins execute in worker processes forked from the
``ansible-playbook`` process, one per task and host, so the run id must be
derivable identically in each of them without shared state.
"""

from __future__ import annotations

import getpass
import hashlib
import multiprocessing
import os
import socket
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional

RUN_ID_ENV = "RELOPS_RUN_ID"
# A fixed namespace so the same controller process always maps to the same id.
_RUN_NAMESPACE = uuid.UUID("6f1d2a3c-5b7e-4c1a-9d2e-8a4b3c2d1e0f")
# The job context AWX passes as extra variables; a job launched by a workflow also gets the workflow's.
AWX_VARS = (
    "awx_user_name",
    "awx_user_id",
    "awx_job_id",
    "awx_job_template_name",
    "awx_schedule_name",
    "awx_workflow_job_id",
    "awx_workflow_job_name",
)


@dataclass(frozen=True)
class Actor:
    """The run and the identity behind a write to the ledger or the audit trail."""

    run_id: str
    user: str
    host: str
    sudo_user: Optional[str] = None
    awx_user_name: Optional[str] = None
    awx_user_id: Optional[str] = None
    awx_job_id: Optional[str] = None
    awx_job_template_name: Optional[str] = None
    awx_schedule_name: Optional[str] = None
    awx_workflow_job_id: Optional[str] = None
    awx_workflow_job_name: Optional[str] = None

    def as_dict(self) -> "dict[str, Any]":
        """Return the actor as a plain dict without empty fields."""
        return {key: value for key, value in asdict(self).items() if value not in (None, "")}

    def display(self) -> str:
        """Return a short human form: user@host (run id)."""
        who = self.awx_user_name or self.sudo_user or self.user
        return "%s@%s (run %s)" % (who, self.host, self.run_id)


def controller_pid() -> int:
    """Return the pid of the ansible-playbook process this code runs under.

    Ansible's task workers are multiprocessing children of the main process, so
    a worker's parent is the run; in the main process itself (callbacks) there
    is no multiprocessing parent.
    """
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid is not None else os.getpid()


def _process_start_ticks(pid: int) -> str:
    """Return the process start time in clock ticks, so a reused pid gets a new run id."""
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return "0"


def controller_process() -> "dict[str, Any]":
    """Return the ansible-playbook process of this run: pid, start time (clock ticks) and a digest of
    its command line.

    A lock records it, so a later run on the same host can tell that the holder died
    (``kill -9``, a crash) instead of waiting for the lock's time to live to run out, and find the
    run's workers that outlive it (run_survivors).
    """
    return process_record(controller_pid())


def process_record(pid: int) -> "dict[str, Any]":
    """What a lock records of a process: pid, start time (clock ticks), command line digest."""
    return {"pid": pid, "started": _process_start_ticks(pid), "cmdline": _cmdline_digest(pid)}


def _cmdline_digest(pid: int) -> str:
    """sha256 of a process's command line: the lock keeps no arguments (they may carry secrets)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            data = handle.read()
    except OSError:
        return ""
    return hashlib.sha256(data).hexdigest() if data else ""


def _stat_fields(pid: int) -> Optional["list[str]"]:
    """/proc/<pid>/stat after the command name: [state, ppid, ...]; starttime is index 19."""
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def run_survivors(process: Mapping[str, Any]) -> "list[int]":
    """Processes of a run whose ansible-playbook (``process``, as controller_process recorded it) still work.

    Ansible's task workers are forks of ansible-playbook that call setsid(): a kill -9 of the
    ansible-playbook, even of its process group, leaves them running their task (and the module it
    started, which they wait for) to its end. They carry its command line and started after it; the
    ones that are this run's own (the caller's ansible-playbook and its children) do not count. Another
    live run with the very same command line counts too, which errs on the side of waiting. Empty when
    the recorded process has no command line digest (a lock taken before it was recorded).
    """
    digest = process.get("cmdline")
    if not isinstance(digest, str) or not digest:
        return []
    try:
        started = int(process.get("started") or 0)
    except (TypeError, ValueError):
        started = 0
    ours = {os.getpid(), controller_pid()}
    survivors: "list[int]" = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in ours or int(entry) == process.get("pid"):
            continue
        fields = _stat_fields(int(entry))
        if fields is None or len(fields) < 20 or fields[0] in ("Z", "X"):
            continue
        if int(fields[19]) < started or int(fields[1]) in ours:
            continue
        if _cmdline_digest(int(entry)) == digest:
            survivors.append(int(entry))
    return sorted(survivors)


def process_alive(pid: Any, started: Any) -> bool:
    """Whether the process recorded as (pid, start ticks) on this host still runs.

    A pid that now belongs to another process (a different start time) counts as dead.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return True
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        return True
    # A zombie (killed, not yet reaped by its parent) runs no more code.
    if fields[0] in ("Z", "X"):
        return False
    return str(started) in ("", "0") or fields[19] == str(started)


def current_run_id(environ: Optional[Mapping[str, str]] = None) -> str:
    """Return the id of the current run.

    ``RELOPS_RUN_ID`` wins when set (the audit callback sets it at playbook
    start, and AWX or a wrapper script may set it). Otherwise the id is derived
    from this host, the ansible-playbook pid and that process's start time.
    """
    env = os.environ if environ is None else environ
    explicit = env.get(RUN_ID_ENV, "").strip()
    if explicit:
        return explicit
    pid = controller_pid()
    seed = "%s/%d/%s" % (socket.gethostname(), pid, _process_start_ticks(pid))
    return str(uuid.uuid5(_RUN_NAMESPACE, seed))


def playbook_paths() -> "list[str]":
    """Return the playbook files of this ansible-playbook run (empty for other commands)."""
    try:
        from ansible import context  # noqa: PLC0415 - only meaningful inside an Ansible process
    except ImportError:
        return []
    arguments = context.CLIARGS.get("args") or ()
    if isinstance(arguments, str):
        return []
    return [os.path.abspath(str(argument)) for argument in arguments if os.path.isfile(str(argument))]


def adhoc_module() -> Optional[str]:
    """The module an ad-hoc ``ansible -m`` command runs; None inside ansible-playbook and elsewhere."""
    try:
        from ansible import context  # noqa: PLC0415 - only meaningful inside an Ansible process
    except ImportError:
        return None
    name = context.CLIARGS.get("module_name")
    return str(name) if name else None


def current_actor(task_vars: Optional[Mapping[str, Any]] = None, environ: Optional[Mapping[str, str]] = None) -> Actor:
    """Return the actor for this run, with AWX's job context when the vars carry it."""
    env = os.environ if environ is None else environ
    variables = task_vars or {}
    awx = {name: _text_or_none(variables.get(name)) for name in AWX_VARS}
    run_id = current_run_id(env)
    if not env.get(RUN_ID_ENV) and awx["awx_job_id"]:
        run_id = "awx-job-%s" % awx["awx_job_id"]
    return Actor(
        run_id=run_id,
        user=_login_name(),
        host=socket.gethostname(),
        sudo_user=env.get("SUDO_USER") or None,
        **awx,
    )


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "uid-%d" % os.getuid()


def _text_or_none(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    return str(value)

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Taking over the lock of a run that died (``kill -9``, a crash, a lost container) before its TTL ran out.

Whether the holder is dead is decided by the caller (the release_lock action, from the holder's
host and ansible-playbook process recorded in the lock); this mixin only makes the takeover safe:
a compare-and-swap on the holder it was shown, recorded in ``lock_events`` as ``taken_over`` with
the previous owner, the dead run's ``running`` row marked ``aborted`` and its ``in_progress``
deployments ``failed``, so the ledger does not show them as still going.
"""

from __future__ import annotations

import datetime
import socket
from typing import Any, Callable, List, Mapping, Optional

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, utc_now
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor, process_alive, run_survivors

# store.py builds Ledger from this mixin; the package imports store first, so this import finds it
# (partly initialised) and the helpers below are looked up when called.
from . import store
from .backends import Backend, Cursor
from .errors import LedgerError


class LockRecoveryStore:
    """Take over a dead holder's lock; a mixin of Ledger (uses its backend and lock helpers)."""

    # Provided by Ledger, which this class is mixed into.
    backend: Backend
    _touch_run: Callable[[Cursor, Actor, str], bool]
    _locked_row: Callable[[Cursor, str], Optional["store.LockState"]]
    _read_lock: Callable[[Cursor, str], Optional["store.LockState"]]
    _lock_event: Callable[..., None]

    def take_over_dead_lock(
        self,
        name: str,
        actor: Actor,
        ttl_seconds: int,
        dead_holder: "store.LockState",
        process: Optional[Mapping[str, Any]] = None,
    ) -> "store.LockAttempt":
        """Take ``name`` from ``dead_holder``, provided the lock still is exactly that holder's.

        Returns ``taken_over`` (with ``previous``), or ``held`` when the lock changed hands or was
        renewed since the caller read it (the caller then decides again from the new holder).
        """
        if ttl_seconds < 1:
            raise LedgerError("lock ttl %r is too short; give at least 1 second" % ttl_seconds)
        moment = utc_now()
        now = format_timestamp(moment)
        expires = format_timestamp(moment + datetime.timedelta(seconds=ttl_seconds))
        owner = store._dump({**actor.as_dict(), **({"process": dict(process)} if process else {})})
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            current = self._locked_row(cursor, name)
            if current is None:
                return store.LockAttempt("held", holder=None)
            if current.owner_run_id != dead_holder.owner_run_id or current.expires_at != dead_holder.expires_at:
                return store.LockAttempt("held", holder=current)
            swapped = cursor.execute(
                "UPDATE locks SET owner_run_id = ?, owner = ?, acquired_at = ?, heartbeat_at = ?, expires_at = ?,"
                " ttl_seconds = ? WHERE name = ? AND owner_run_id = ? AND expires_at = ?",
                (actor.run_id, owner, now, now, expires, ttl_seconds, name, current.owner_run_id, current.expires_at),
            )
            if swapped == 0:
                return store.LockAttempt("held", holder=self._read_lock(cursor, name))
            self._lock_event(cursor, name, "taken_over", actor, now, previous=current)
            cursor.execute(
                "UPDATE runs SET status = 'aborted', finished_at = ?, summary = ?"
                " WHERE run_id = ? AND status = 'running'",
                (
                    now,
                    store._dump(
                        {
                            "outcome": "aborted",
                            "reason": "its ansible-playbook process died while holding lock %s; run %s took the lock"
                            % (name, actor.run_id),
                        }
                    ),
                    current.owner_run_id,
                ),
            )
            # What the dead run had started and not finished did not finish: its deployment is failed (the
            # run now holding the lock deploys again, or rolls back, and records its own).
            cursor.execute(
                "UPDATE deployments SET status = 'failed', finished_at = ? WHERE run_id = ? AND status = 'in_progress'",
                (now, current.owner_run_id),
            )
            return store.LockAttempt("taken_over", lock=self._read_lock(cursor, name), previous=current)


def holder_is_dead(holder: "store.LockState") -> bool:
    """Whether the holder's run is known to be gone: its ansible-playbook and every worker it forked.

    Only a holder on this host with a recorded process can be checked; any other holder (another
    controller, an AWX job in another container, a lock written before processes were recorded)
    keeps the lock until its TTL runs out. A holder whose ansible-playbook died while a worker still
    runs a task (say a migration or a router switch) keeps the lock until that worker is gone.
    """
    process = holder.owner.get("process")
    if not isinstance(process, dict) or holder.owner.get("host") != socket.gethostname():
        return False
    if process_alive(process.get("pid"), process.get("started")):
        return False
    return not run_survivors(process)


def holder_survivors(holder: "store.LockState") -> List[int]:
    """The pids still working for a holder whose ansible-playbook died on this host (for messages)."""
    process = holder.owner.get("process")
    if not isinstance(process, dict) or holder.owner.get("host") != socket.gethostname():
        return []
    if process_alive(process.get("pid"), process.get("started")):
        return []
    return run_survivors(process)

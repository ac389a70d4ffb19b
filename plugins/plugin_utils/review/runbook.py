# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbook rule: a release's runbook is updated within N hours AFTER the deployment.

A deployment changes the configuration the runbook describes, so the practice is to update the
runbook once the release is out, to reflect what now runs (not to have touched it shortly before).
The runbook is the manifest's ``runbook`` path, which the release record keeps (docs/release-record.md).
When it is in a git repository its commit history says when it changed; outside one, only its
modification time does, which tells the last change and nothing earlier.
"""

from __future__ import annotations

import datetime
import os
import subprocess
from dataclasses import dataclass
from typing import List, Optional

VERDICTS = ("compliant", "not updated", "pending", "no runbook", "missing", "unknown")


@dataclass(frozen=True)
class RunbookCheck:
    verdict: str
    method: str
    updated_at: Optional[datetime.datetime] = None


def check_runbook(
    runbook: Optional[str],
    root: Optional[str],
    deployed_at: datetime.datetime,
    hours: int,
    now: datetime.datetime,
) -> RunbookCheck:
    """Whether the runbook changed in [deployed_at, deployed_at + hours].

    ``pending``: no update yet, but the period has not ended; ``not updated``: the period ended
    without one; ``unknown``: outside git, the file changed after the period, which hides whether it
    also changed within it.
    """
    if not runbook:
        return RunbookCheck("no runbook", "none")
    path = runbook if os.path.isabs(runbook) or not root else os.path.join(root, runbook)
    deadline = deployed_at + datetime.timedelta(hours=hours)
    changes = _git_changes(path)
    if changes:
        within = [moment for moment in changes if deployed_at <= moment <= deadline]
        if within:
            return RunbookCheck("compliant", "git", min(within))
        return RunbookCheck("pending" if now < deadline else "not updated", "git")
    if not os.path.exists(path):
        return RunbookCheck("missing", "missing")
    modified = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
    if modified > deadline:
        return RunbookCheck("unknown", "mtime")
    if modified >= deployed_at:
        return RunbookCheck("compliant", "mtime", modified)
    return RunbookCheck("pending" if now < deadline else "not updated", "mtime")


def _git_changes(path: str) -> List[datetime.datetime]:
    """When each commit touching the file was made (empty outside a repository or for an untracked file)."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        return []
    done = subprocess.run(
        ["git", "-C", directory, "log", "--format=%ct", "--", os.path.basename(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return []
    return [datetime.datetime.fromtimestamp(int(line), datetime.timezone.utc) for line in done.stdout.split()]

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters relops.release.version_compare, version_sort and version_bump (docs in the .yml files beside)."""

from __future__ import annotations

import datetime
from typing import Any, Callable, Dict, List, Optional

from ansible.errors import AnsibleFilterError

from ansible_collections.relops.release.plugins.module_utils.versions import VersionError
from ansible_collections.relops.release.plugins.plugin_utils.artifacts import versioning


def version_compare(left: Any, right: Any, scheme: str = "semver") -> int:
    try:
        return versioning.compare(str(left), str(right), scheme)
    except VersionError as exc:
        raise AnsibleFilterError("version_compare: %s" % exc) from None


def version_sort(versions: Any, scheme: str = "semver", reverse: bool = False) -> List[str]:
    try:
        return versioning.sort(versions, scheme, reverse)
    except VersionError as exc:
        raise AnsibleFilterError("version_sort: %s" % exc) from None


def version_bump(
    version: Any, part: str = "patch", scheme: str = "semver", token: Optional[str] = None, today: Any = None
) -> str:
    try:
        day = datetime.date.fromisoformat(str(today)) if today else None
        return versioning.bump(str(version), part, scheme, token, day)
    except ValueError as exc:
        raise AnsibleFilterError("version_bump: %s" % exc) from None


class FilterModule:
    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"version_compare": version_compare, "version_sort": version_sort, "version_bump": version_bump}

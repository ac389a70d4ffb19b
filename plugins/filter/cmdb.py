# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter relops.release.environment_ci (docs in environment_ci.yml beside)."""

from __future__ import annotations

from typing import Any, Callable, Dict

from ansible.errors import AnsibleFilterError

from ansible_collections.relops.release.plugins.plugin_utils.itsm.cmdb import environment_ci_name


def environment_ci(service: Any, environment: Any) -> str:
    if not str(service or "") or not str(environment or ""):
        raise AnsibleFilterError(
            "environment_ci: service %r and environment %r must both be set, e.g. "
            "'payments-api' | relops.release.environment_ci('production')" % (service, environment)
        )
    return environment_ci_name(str(service), str(environment))


class FilterModule:
    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"environment_ci": environment_ci}

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.db_credentials (documentation in plugins/modules/db_credentials.py)."""

from __future__ import annotations

from typing import Any, Dict

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.secrets import SecretsError
from ansible_collections.relops.release.plugins.plugin_utils.secrets.dbcreds import (
    issue_login,
    lease_exists,
    lease_summary,
    login_url,
    revoke_lease,
)
from ansible_collections.relops.release.plugins.plugin_utils.secrets.openbao import (
    OPENBAO_ARGUMENT_SPEC,
    OpenBaoClient,
    OpenBaoConfig,
)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "role": {"type": "str"},
    "mount": {"type": "str", "default": "database"},
    "db_url": {"type": "str"},
    "lease_id": {"type": "str"},
    "openbao": {"type": "dict", "default": {}, "options": OPENBAO_ARGUMENT_SPEC},
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        client = OpenBaoClient(OpenBaoConfig.from_options(args["openbao"]))
        if args["state"] == "absent":
            result = _revoke(client, args, self.check_mode)
        else:
            result = _issue(client, args, self.check_mode)
        if self.diff_mode:
            result["diff"] = _diff(args, result)
        return result


def _issue(client: OpenBaoClient, args: Dict[str, Any], check_mode: bool) -> Dict[str, Any]:
    if not args.get("role"):
        raise SecretsError("state=present needs role: the database secrets engine role that issues the login")
    if check_mode:
        # Reading the role proves it exists and the token may use it, without creating a login.
        client.read("%s/roles/%s" % (args["mount"].strip("/"), args["role"]))
        return {"changed": True}
    lease = issue_login(client, args["mount"], args["role"])
    result: Dict[str, Any] = {"changed": True, **lease_summary(lease), "password": lease.password}
    if args.get("db_url"):
        result["db_url"] = login_url(args["db_url"], lease.username)
    # The password is in the registered variable only: every display of this result is censored.
    result["_ansible_no_log"] = True
    return result


def _diff(args: Dict[str, Any], result: Dict[str, Any]) -> Dict[str, str]:
    header = "%s/creds/%s" % (args["mount"].strip("/"), args["role"]) if args["state"] == "present" else "lease"
    if args["state"] == "present":
        issued = "login %s\n" % result.get("username", "(issued when not in check mode)")
        return {"before": "no login\n", "after": issued, "before_header": header, "after_header": header}
    live = "lease %s live\n" % args["lease_id"]
    before = live if result["changed"] else "lease %s gone\n" % args["lease_id"]
    after = "lease %s gone\n" % args["lease_id"]
    return {"before": before, "after": after, "before_header": header, "after_header": header}


def _revoke(client: OpenBaoClient, args: Dict[str, Any], check_mode: bool) -> Dict[str, Any]:
    lease_id = args.get("lease_id")
    if not lease_id:
        raise SecretsError("state=absent needs lease_id: the lease_id that state=present returned")
    changed = lease_exists(client, lease_id) if check_mode else revoke_lease(client, lease_id)
    return {"changed": changed, "lease_id": lease_id}

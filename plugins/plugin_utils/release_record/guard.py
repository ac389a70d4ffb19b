# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The permit guard: the action in front of every module that changes a host, a router or a schema.

In an environment the policy marks enforced, the guard refuses to run its module
unless a release permit verifies for this environment, this host and (where the
module installs an artifact) this artifact's digest, now, and the ledger does not
list it as revoked. Outside enforced environments it runs the module unchanged.

The environment is the host's ``relops_environment``: set it in the inventory,
next to the hosts (the release role sets it from ``release_environment`` and
refuses a release to hosts the inventory puts elsewhere); the policy is
``relops_policy`` or ``release_policy``; the permit keyring is ``relops_permit_keyring``
(docs/governance.md, "What is enforced, and where").
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ansible.plugins.action import ActionBase

from ansible_collections.relops.release.plugins.module_utils.timestamps import utc_now
from ansible_collections.relops.release.plugins.plugin_utils.artifacts import ArtifactError
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.attest import Keyring, load_keyring
from ansible_collections.relops.release.plugins.plugin_utils.ledger import (
    LEDGER_URL_VAR,
    LedgerError,
    resolve_ledger_url,
)
from ansible_collections.relops.release.plugins.plugin_utils.ledger.store import open_existing_ledger
from ansible_collections.relops.release.plugins.plugin_utils.policy import load_policy

from .permit import PermitError, check_permit, refusal_message
from .store import ReleaseRecordStore

PERMIT_VAR = "relops_release_permit"
KEYRING_VAR = "relops_permit_keyring"


class PermitChecks:
    """The permit check for an action plugin: whether the environment is enforced and, if so, the permit
    that covers this change. Shared by the guard below and by controller-side actions (``promote``)."""

    task_vars: Dict[str, Any]
    _loader: Any
    _templar: Any

    def permit_for(
        self,
        environment: str,
        given: Any,
        action: str,
        host: Optional[str] = None,
        digest: Optional[str] = None,
        rollback_allowed: bool = False,
    ) -> Optional[Dict[str, Any]]:
        """The permit for this change in ``environment``; None where the policy does not enforce it.

        ``given`` is the task's ``permit`` option, else ``relops_release_permit``; ``digest`` the sha256
        the change installs. With ``rollback_allowed`` an artifact once released to the environment
        passes under the permit of the release that failed (recorded as ``use: rollback``)."""
        policy = load_policy(self._var("relops_policy") or self._var("release_policy") or None)
        if not policy.enforced(environment):
            return None
        keyring = self._keyring(environment)
        envelope = given if given not in (None, "") else self._var(PERMIT_VAR)
        try:
            check = check_permit(envelope, keyring, utc_now(), environment, host=host, is_revoked=self._revocation)
        except PermitError as exc:
            raise PermitError("%s refused: %s" % (action, exc)) from None
        if check.valid and digest and digest != check.permit["digest"]:
            if rollback_allowed and self._released_before(check.permit, digest):
                check.permit = dict(check.permit, use="rollback")
            else:
                check.reasons.append(
                    "permit %s is for artifact sha256:%s, not sha256:%s%s"
                    % (
                        check.permit["permit_id"],
                        check.permit["digest"][:16],
                        digest[:16],
                        " (nor was that artifact ever released to %s)" % environment if rollback_allowed else "",
                    )
                )
        if not check.valid:
            raise PermitError(refusal_message(check, action))
        return check.permit

    def _released_before(self, permit: Dict[str, Any], digest: str) -> bool:
        """A rollback installs the release it goes back to, which this permit does not name; it needs no
        new approval when that artifact was itself released successfully to this environment."""
        ledger = open_existing_ledger(resolve_ledger_url(self._var(LEDGER_URL_VAR)))
        if ledger is None:
            return False
        with ledger:
            return ReleaseRecordStore(ledger).released_before(permit["service"], permit["environment"], digest)

    def _keyring(self, environment: str) -> Keyring:
        value = self._var(KEYRING_VAR)
        if not value:
            raise PermitError(
                "environment %s is enforced but %s is not set: point it at the keyring (YAML, as for "
                "artifact_verify) holding the public key that signs permits" % (environment, KEYRING_VAR)
            )
        document = value if isinstance(value, dict) else self._loader.load_from_file(self._loader.path_dwim(value))
        if not isinstance(document, dict):
            raise PermitError("%s %s does not hold a keyring mapping (keys: [...])" % (KEYRING_VAR, value))
        return load_keyring(document, self._read_key_file)

    def _read_key_file(self, path: str) -> bytes:
        try:
            with open(self._loader.path_dwim(path), "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise PermitError("permit keyring key file %s cannot be read (%s)" % (path, exc.strerror)) from None

    def _revocation(self, permit_id: str) -> Optional[str]:
        """The reason a permit was revoked, from the ledger; None when it was not (or no ledger exists yet)."""
        ledger = open_existing_ledger(resolve_ledger_url(self._var(LEDGER_URL_VAR)))
        if ledger is None:
            return None
        with ledger:
            row = ReleaseRecordStore(ledger).get_permit(permit_id)
        if row is None or not row["revoked_at"]:
            return None
        return "by %s at %s: %s" % (row["revoked_by"], row["revoked_at"], row["revoke_reason"])

    def _var(self, name: str) -> Any:
        value = self.task_vars.get(name)
        return self._templar.template(value) if value is not None else None


class PermitGuardedAction(PermitChecks, ActionBase):
    """Runs the module of the same name on the target, behind the permit check (otherwise as
    ansible-core's own ``normal`` action does: async, check mode, the remote temporary directory)."""

    _supports_check_mode = True
    _supports_async = True

    # The module's states that change nothing and need no permit, and its default state.
    reading_states: "tuple[str, ...]" = ("query",)
    default_state = "present"
    # The option holding the artifact's digest the permit must name (None: the module installs no artifact).
    digest_option: Optional[str] = None

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        task_vars = task_vars or {}
        result: Dict[str, Any] = super().run(tmp, task_vars)
        del tmp
        self.task_vars = task_vars
        module_args = dict(self._task.args)
        given = module_args.pop("permit", None)
        try:
            permit = self._check(module_args, given)
        except (LedgerError, ArtifactError) as exc:
            result.update(failed=True, changed=False, msg=str(exc))
            return result
        module = "relops.release.%s" % self._task.action.rsplit(".", 1)[-1]
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        result.update(
            self._execute_module(
                module_name=module, module_args=module_args, task_vars=task_vars, wrap_async=wrap_async
            )
        )
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        if permit is not None:
            result["permit_id"] = permit["permit_id"]
            result["release_id"] = permit["release_id"]
            result["permit_use"] = permit.get("use", "release")
            result.setdefault("relops_audit", []).append(
                {
                    "kind": "permit_used",
                    "permit_id": permit["permit_id"],
                    "release_id": permit["release_id"],
                    "use": result["permit_use"],
                }
            )
        return result

    def _check(self, module_args: Dict[str, Any], given: Any) -> Optional[Dict[str, Any]]:
        """The permit this change runs under; None where the environment is not enforced or nothing changes."""
        environment = self._var("relops_environment")
        if not environment or not self.changes(module_args):
            return None
        digest = module_args.get(self.digest_option) if self.digest_option else None
        permit = self.permit_for(
            str(environment),
            given,
            "%s on %s" % (self._task.action, self.task_vars.get("inventory_hostname")),
            host=str(self.task_vars.get("inventory_hostname")),
            digest=_sha256_of(digest) if digest else None,
            rollback_allowed=True,
        )
        if permit is not None and self.digest_option and not digest:
            # The module checks the file it installs against the digest the permit names.
            module_args[self.digest_option] = "sha256:%s" % permit["digest"]
        return permit

    def changes(self, module_args: Dict[str, Any]) -> bool:
        return str(module_args.get("state") or self.default_state) not in self.reading_states


def _sha256_of(checksum: str) -> str:
    """The hex digest of a ``sha256:<hex>`` checksum option (a bare hex digest is taken as sha256)."""
    algorithm, _separator, value = str(checksum).rpartition(":")
    if algorithm and algorithm.lower() != "sha256":
        raise PermitError("permits name sha256 digests; give the package's checksum as sha256:<hex>, not %s" % checksum)
    return value.lower()

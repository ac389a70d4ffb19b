# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release permit: the change gate's ``allow`` as a signed statement.

A permit is an in-toto Statement v1 in a DSSE envelope, the collection's
attestation format (docs/artifacts.md), whose subject is the release's artifact
(name = release id, sha256 = the artifact's digest) and whose predicate binds the
service, environment, change, the hosts it covers and its validity. The gate
signs it with the permit key; in an enforced environment every module that
changes a host, a router or a schema verifies it against the permit keyring
before it acts (docs/governance.md, "What is enforced, and where").
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, parse_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.artifacts import ArtifactError, attest
from ansible_collections.relops.release.plugins.plugin_utils.secrets.openbao import OpenBaoClient, OpenBaoConfig
from ansible_collections.relops.release.plugins.plugin_utils.secrets.transit import TRANSIT_KEY_SPEC, open_signer

from .model import ReleaseRecordError

PERMIT_TYPE = "https://relops.example/release-permit/v1"
HOW_TO_OBTAIN = (
    "run the release through relops.release.change_gate with release_id (playbooks/release.yml does), "
    "which issues a permit on allow; see docs/governance.md, 'Release permits'"
)


if TYPE_CHECKING:
    # What signs a permit: a private key from a PEM file, or a key held in OpenBao's transit engine.
    PermitSigner = Union[attest.PrivateKey, attest.RemoteSigner]


class PermitError(ReleaseRecordError):
    """A permit is missing, malformed, or does not cover the action: what is wrong and how to get one."""


@dataclass
class PermitCheck:
    """A verified permit's predicate, or the reasons it does not cover the action."""

    permit: Dict[str, Any] = field(default_factory=dict)
    signers: List[str] = field(default_factory=list)
    reasons: List[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.reasons


def build_permit(
    record: Mapping[str, Any],
    hosts: Sequence[str],
    now: datetime.datetime,
    lifetime_seconds: int,
    decision: Mapping[str, Any],
) -> Dict[str, Any]:
    """The statement of a permit for a release record and the hosts it may change."""
    if lifetime_seconds <= 0:
        raise PermitError("permit lifetime %r must be a positive number of seconds" % lifetime_seconds)
    return {
        "_type": attest.STATEMENT_TYPE,
        "subject": [{"name": record["release_id"], "digest": {"sha256": _bare_digest(record["digest"])}}],
        "predicateType": PERMIT_TYPE,
        "predicate": {
            "permit_id": str(uuid.uuid4()),
            "release_id": record["release_id"],
            "service": record["service"],
            "environment": record["environment"],
            "version": record["version"],
            "digest": _bare_digest(record["digest"]),
            "change": record.get("change_number"),
            "hosts": sorted(set(hosts)),
            "not_before": format_timestamp(now),
            "not_after": format_timestamp(now + datetime.timedelta(seconds=lifetime_seconds)),
            "decision": {key: decision.get(key) for key in ("decided_at", "policy_version", "inputs_digest")},
        },
    }


def load_permit_key(path: str, passphrase: Optional[str] = None) -> attest.PrivateKey:
    """The gate's permit signing key from a PEM file on the controller."""
    try:
        with open(path, "rb") as handle:
            pem = handle.read()
    except OSError as exc:
        raise PermitError(
            "permit key %s cannot be read (%s); set relops_permit_key to the PEM private key that signs permits"
            % (path, exc.strerror)
        ) from None
    try:
        return attest.load_private_key(pem, passphrase, "permit key %s" % path)
    except ArtifactError as exc:
        raise PermitError(str(exc)) from None


def open_permit_signer(
    transit: Any, key_path: Optional[str], passphrase: Optional[str], openbao: Mapping[str, Any]
) -> Optional[PermitSigner]:
    """The key that signs permits: a transit key (read now, so a sealed OpenBao fails before anything is
    written), or a PEM file; None when neither is set."""
    if transit and key_path:
        raise PermitError(
            "both a permit key file (%s) and a transit permit key (%s) are set; permits are signed by one key: keep "
            "permit_key / relops_permit_key or permit_transit / relops_permit_transit"
            % (key_path, transit.get("key") if isinstance(transit, Mapping) else transit)
        )
    if transit:
        return open_signer(OpenBaoClient(OpenBaoConfig.from_options(openbao)), transit_options(transit))
    return load_permit_key(key_path, passphrase) if key_path else None


def transit_options(value: Any) -> Dict[str, Any]:
    """relops_permit_transit as permit_transit takes it: {key, mount, version}, or the key's name."""
    if isinstance(value, str):
        return {"key": value, "mount": "transit"}
    if not isinstance(value, Mapping) or not value.get("key"):
        raise PermitError(
            "relops_permit_transit %r is not a transit key: give {key: <name>, mount: transit, version: <n>} "
            "or the key's name" % (value,)
        )
    unknown = sorted(set(value) - set(TRANSIT_KEY_SPEC))
    if unknown:
        raise PermitError(
            "relops_permit_transit has unknown keys %s; it takes %s" % (", ".join(unknown), ", ".join(TRANSIT_KEY_SPEC))
        )
    return dict(value)


def sign_permit(statement: Mapping[str, Any], key: PermitSigner) -> Dict[str, Any]:
    return attest.sign_envelope(statement, [key])


def check_permit(
    envelope: Union[str, Mapping[str, Any], None],
    keyring: attest.Keyring,
    now: datetime.datetime,
    environment: str,
    host: Optional[str] = None,
    digest: Optional[str] = None,
    is_revoked: Optional[Callable[[str], Optional[str]]] = None,
) -> PermitCheck:
    """Verify a permit's signature and that it covers this environment, host and artifact, now."""
    if envelope in (None, "", {}):
        raise PermitError("no release permit: %s is an enforced environment; %s" % (environment, HOW_TO_OBTAIN))
    try:
        parsed = attest.parse_envelope(envelope, "release permit") if isinstance(envelope, str) else dict(envelope)
        found = attest.check_envelope(parsed, keyring, 1, now, predicate_type=PERMIT_TYPE)
    except (ArtifactError, KeyError, TypeError) as exc:
        raise PermitError("the release permit is not a permit envelope (%s); %s" % (exc, HOW_TO_OBTAIN)) from None
    check = PermitCheck(signers=found.signers, reasons=list(found.reasons))
    predicate = (found.statement or {}).get("predicate")
    if not isinstance(predicate, dict):
        check.reasons.append("the permit has no predicate")
        return check
    check.permit = predicate
    check.reasons.extend(_coverage_reasons(predicate, now, environment, host, digest))
    revoked = is_revoked(str(predicate.get("permit_id"))) if is_revoked else None
    if revoked:
        check.reasons.append("permit %s was revoked (%s)" % (predicate.get("permit_id"), revoked))
    return check


def _coverage_reasons(
    predicate: Mapping[str, Any], now: datetime.datetime, environment: str, host: Optional[str], digest: Optional[str]
) -> List[str]:
    reasons: List[str] = []
    permit_id = predicate.get("permit_id")
    if predicate.get("environment") != environment:
        reasons.append(
            "permit %s is for environment %s, not %s" % (permit_id, predicate.get("environment"), environment)
        )
    if host is not None and host not in (predicate.get("hosts") or []):
        reasons.append(
            "permit %s does not cover host %s (it covers %s)"
            % (permit_id, host, ", ".join(predicate.get("hosts") or []) or "no host")
        )
    if digest is not None and _bare_digest(digest) != predicate.get("digest"):
        reasons.append(
            "permit %s is for artifact sha256:%s, not sha256:%s"
            % (permit_id, str(predicate.get("digest"))[:16], _bare_digest(digest)[:16])
        )
    try:
        not_before = parse_timestamp(str(predicate.get("not_before")))
        not_after = parse_timestamp(str(predicate.get("not_after")))
    except ValueError:
        return [*reasons, "permit %s has no valid not_before/not_after" % permit_id]
    if now < not_before:
        reasons.append("permit %s is not valid before %s" % (permit_id, predicate.get("not_before")))
    if now > not_after:
        reasons.append("permit %s expired at %s" % (permit_id, predicate.get("not_after")))
    return reasons


def refusal_message(check: PermitCheck, action: str) -> str:
    return "%s refused: the release permit does not verify: %s; %s" % (action, "; ".join(check.reasons), HOW_TO_OBTAIN)


def _bare_digest(digest: str) -> str:
    return str(digest).rsplit(":", maxsplit=1)[-1].lower()

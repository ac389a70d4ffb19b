# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side artifact verification: digest, checksum, signatures, subject, manifest, name, environment.

Every check runs and adds its reason when it fails, so one run reports all
that is wrong. The artifact is read once for its digests (constant memory);
the manifest is read from the package's first entry without unpacking it.
"""

from __future__ import annotations

import datetime
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.relops.release.plugins.module_utils.digests import (
    ChecksumError,
    digests_equal,
    file_digests,
    parse_prefixed,
    parse_sums_file,
    require_algorithm,
)
from ansible_collections.relops.release.plugins.module_utils.unpack import UnsafeArchiveError, read_member
from ansible_collections.relops.release.plugins.module_utils.versions import VersionError, check_file_name

from . import ArtifactError
from .attest import Keyring, check_envelope, parse_envelope, signed_manifest, subject_reasons
from .manifest import artifact_environment_error, canonical_json, load_manifest_text, manifest_errors, version_scheme

_PREFIXED_FORM = re.compile(r"^[A-Za-z0-9]+:")


@dataclass
class VerifyRequest:
    path: str
    algorithm: str = "sha256"
    checksum: Optional[str] = None
    envelope_text: Optional[bytes] = None
    envelope_source: str = "envelope"
    keyring: Optional[Keyring] = None
    required_signatures: int = 1
    check_manifest: bool = True
    name_pattern: str = "{name}-{version}.{ext}"
    environment: Optional[str] = None
    validate_certs: bool = True
    ca_path: Optional[str] = None
    now: Optional[datetime.datetime] = None
    # Digests measured elsewhere (on the target): then only checksum and envelope are checked here.
    measured: Optional[Dict[str, str]] = None
    measured_size: int = 0


@dataclass
class VerifyReport:
    path: str
    name: str
    algorithm: str
    digest: str = ""
    sha256: str = ""
    size: int = 0
    digests: Dict[str, str] = field(default_factory=dict)
    signers: List[str] = field(default_factory=list)
    manifest: Optional[Dict[str, Any]] = None
    reasons: List[str] = field(default_factory=list)
    # What vouched for the artifact: "checksum" and/or "signatures". A report that checked neither is
    # never verified, whatever else passed: a manifest alone proves nothing about who built the file.
    checked: List[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.reasons and bool(self.checked)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "algorithm": self.algorithm,
            "digest": "%s:%s" % (self.algorithm, self.digest),
            "sha256": self.sha256,
            "size": self.size,
            "digests": self.digests,
            "signers": self.signers,
            "manifest": self.manifest,
            "reasons": self.reasons,
            "checked": self.checked,
            "verified": self.verified,
        }


def resolve_checksum(
    checksum: str,
    artifact_name: str,
    validate_certs: bool = True,
    ca_path: Optional[str] = None,
) -> Tuple[str, str]:
    """Turn the checksum option (``<alg>:<hex>``, a sums file path, or a file:// / https:// URL) into (alg, hex)."""
    text = checksum.strip()
    scheme = urllib.parse.urlsplit(text).scheme
    if scheme == "file":
        return parse_sums_file(_read_file_url(text), artifact_name)
    if scheme == "https":
        return parse_sums_file(_fetch(text, validate_certs, ca_path), artifact_name)
    if scheme == "http":
        raise ChecksumError(
            "checksum URL %s is plain HTTP, which anyone on the path can alter; serve it over https://" % text
        )
    if _PREFIXED_FORM.match(text) is None and os.path.isfile(text):
        return parse_sums_file(_read_text(text), artifact_name)
    return parse_prefixed(text)


def _read_file_url(url: str) -> str:
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise ChecksumError("checksum file %s cannot be read (%s)" % (url, exc.strerror)) from None


def _fetch(url: str, validate_certs: bool, ca_path: Optional[str]) -> str:
    # Imported here: only https:// checksums need it.
    try:
        import requests  # noqa: PLC0415
    except ImportError:
        raise ChecksumError("https:// checksum URLs need the Python package 'requests' on the controller") from None
    verify: Any = (ca_path or True) if validate_certs else False
    try:
        response = requests.get(url, timeout=30, verify=verify)
    except requests.exceptions.SSLError as exc:
        raise ChecksumError(
            "checksum URL %s: TLS certificate validation failed (%s); give the CA with ca_path "
            "rather than turning validate_certs off" % (url, exc)
        ) from None
    except requests.RequestException as exc:
        raise ChecksumError("checksum URL %s cannot be fetched (%s)" % (url, exc)) from None
    if response.status_code != 200:
        raise ChecksumError("checksum URL %s answered HTTP %d; check the URL" % (url, response.status_code))
    return response.text


def verify_artifact(request: VerifyRequest) -> VerifyReport:
    """Run every check; the report's reasons list what failed (empty when the artifact is trusted)."""
    require_algorithm(request.algorithm)
    name = os.path.basename(request.path)
    report = VerifyReport(path=request.path, name=name, algorithm=request.algorithm)
    expected: Optional[Tuple[str, str]] = None
    if request.checksum:
        expected = resolve_checksum(request.checksum, name, request.validate_certs, request.ca_path)
    if request.measured is not None:
        digests, report.size = request.measured, request.measured_size
    elif not os.path.isfile(request.path):
        raise ArtifactError("artifact %s does not exist or is not a file" % request.path)
    else:
        algorithms = [request.algorithm, "sha256"] + ([expected[0]] if expected else [])
        digests, report.size = file_digests(request.path, algorithms)
    report.digest, report.sha256, report.digests = digests[request.algorithm], digests["sha256"], dict(digests)
    if expected:
        report.checked.append("checksum")
    if expected and not digests_equal(expected[1], digests[expected[0]]):
        report.reasons.append(
            "artifact %s: %s mismatch (expected %s, got %s); the file changed after it was checksummed"
            % (name, expected[0], expected[1], digests[expected[0]])
        )
    signed = _check_signatures(request, report) if request.envelope_text is not None else None
    if request.envelope_text is not None:
        report.checked.append("signatures")
    if request.check_manifest and request.measured is None:
        _check_manifest(request, report, signed)
    return report


def _check_signatures(request: VerifyRequest, report: VerifyReport) -> Optional[Dict[str, Any]]:
    if request.keyring is None:
        raise ArtifactError("an envelope was given without a keyring; give keyring with the trusted public keys")
    try:
        envelope = parse_envelope(request.envelope_text or b"", request.envelope_source)
    except ArtifactError as exc:
        report.reasons.append(str(exc))
        return None
    now = request.now or datetime.datetime.now(datetime.timezone.utc)
    check = check_envelope(envelope, request.keyring, request.required_signatures, now)
    report.signers = check.signers
    report.reasons.extend(check.reasons)
    if check.statement is None:
        return None
    report.reasons.extend(subject_reasons(check.statement, report.name, report.sha256))
    return signed_manifest(check.statement)


def _check_manifest(request: VerifyRequest, report: VerifyReport, signed: Optional[Dict[str, Any]]) -> None:
    try:
        manifest = load_manifest_text(read_member(request.path, "manifest.json").decode("utf-8"), report.name)
    except (ArtifactError, UnsafeArchiveError, UnicodeDecodeError, OSError, EOFError) as exc:
        report.reasons.append("manifest.json cannot be read from %s (%s)" % (report.name, exc))
        return
    except Exception as exc:  # tarfile/gzip/zstd raise many types on a damaged stream
        report.reasons.append("%s is not a readable package (%s: %s)" % (report.name, type(exc).__name__, exc))
        return
    report.manifest = manifest
    problems = manifest_errors(manifest)
    report.reasons.extend("manifest %s" % problem for problem in problems)
    if problems:
        return
    try:
        check_file_name(
            report.name, manifest["name"], manifest["version"], request.name_pattern, version_scheme(manifest)
        )
    except VersionError as exc:
        report.reasons.append(str(exc))
    environment_error = artifact_environment_error(manifest, request.environment)
    if environment_error:
        report.reasons.append(environment_error)
    if signed is not None and canonical_json(signed) != canonical_json(manifest):
        report.reasons.append(
            "manifest.json in %s differs from the manifest in the signed provenance; the package was rebuilt "
            "or altered after signing" % report.name
        )


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def unchecked_reason(report: VerifyReport, environment: Optional[str]) -> str:
    """Why a report that checked neither a checksum nor a signature is not a verdict."""
    where = " (environment %s is enforced by the policy)" % environment if environment else ""
    return (
        "artifact %s: neither a checksum nor a signature was checked%s; give checksum "
        "(e.g. sha256:<hex> or a SHA256SUMS file) or envelope with keyring" % (report.name, where)
    )


def failure_message(report: VerifyReport) -> str:
    return "artifact %s failed verification: %s" % (report.name, "; ".join(report.reasons))

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side artifact logic: manifests, packages, attestations, verification, deltas, promotion."""

from __future__ import annotations


class ArtifactError(Exception):
    """An artifact, manifest, key or repository problem; the message names the value and the fix."""


def require_library(available: bool, package: str, purpose: str) -> None:
    """Fail with the install command when a controller-side Python package is missing."""
    if not available:
        raise ArtifactError(
            "%s needs the Python package %r on the controller; install it (pip install %s, or "
            "pip install -r requirements.txt from the collection)" % (purpose, package, package)
        )

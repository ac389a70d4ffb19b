# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the artifact action plugins: the collection's artifact errors become failed tasks."""

from __future__ import annotations

import abc
from typing import Any, Dict, Optional

from ansible_collections.relops.release.plugins.module_utils.digests import ChecksumError
from ansible_collections.relops.release.plugins.module_utils.unpack import UnsafeArchiveError
from ansible_collections.relops.release.plugins.module_utils.versions import VersionError
from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase

from . import ArtifactError
from .attest import Keyring, load_keyring

ARTIFACT_ERRORS = (ArtifactError, ChecksumError, VersionError, UnsafeArchiveError)


class ArtifactActionBase(RelopsActionBase):
    """Controller-side artifact action; subclasses implement ``execute_artifact``."""

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        try:
            return self.execute_artifact(args)
        except ARTIFACT_ERRORS as exc:
            return {"failed": True, "changed": False, "msg": str(exc)}

    @abc.abstractmethod
    def execute_artifact(self, args: Dict[str, Any]) -> Dict[str, Any]:
        """Do the plugin's work; return the result keys."""

    def load_document(self, value: Any, what: str) -> Dict[str, Any]:
        """Accept a mapping given inline, or the path of a JSON or YAML file holding one."""
        if isinstance(value, dict):
            return dict(value)
        if isinstance(value, str):
            document: Optional[Any] = self._loader.load_from_file(self.local_path(value))
            if isinstance(document, dict):
                return dict(document)
            raise ArtifactError("%s file %s does not hold a mapping; write it as a JSON or YAML object" % (what, value))
        raise ArtifactError("%s must be a mapping or the path of a JSON/YAML file, got %r" % (what, value))

    def load_keyring_option(self, value: Any) -> Keyring:
        """The keyring option (mapping or file); key files are resolved like other controller paths."""
        return load_keyring(self.load_document(value, "keyring"), self._read_key_file)

    def _read_key_file(self, path: str) -> bytes:
        try:
            with open(self.local_path(path), "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise ArtifactError("keyring key file %s cannot be read (%s)" % (path, exc.strerror)) from None

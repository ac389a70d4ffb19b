# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Artifact repositories: a directory, or an HTTP raw repository (Nexus, Artifactory) written with PUT.

Both hold ``<name>`` and its envelope ``<name>.intoto.json`` side by side.
Reads stream through a fixed buffer; a directory write lands through a rename,
so a reader never sees half a file.
"""

from __future__ import annotations

import abc
import hashlib
import os
import shutil
import tempfile
import urllib.parse
from typing import Any, Optional

from ansible_collections.relops.release.plugins.module_utils.digests import CHUNK_SIZE, file_digest

from . import ArtifactError

TIMEOUT = 60


class Repository(abc.ABC):
    """One environment's artifact store."""

    location: str

    @abc.abstractmethod
    def sha256_of(self, name: str) -> Optional[str]:
        """The stored file's sha256, or None when it is absent."""

    @abc.abstractmethod
    def fetch(self, name: str, local_path: str) -> bool:
        """Copy the stored file to ``local_path``; False when it is absent."""

    @abc.abstractmethod
    def store(self, name: str, local_path: str) -> None:
        """Store ``local_path`` under ``name``, replacing what was there."""


class DirectoryRepository(Repository):
    def __init__(self, root: str) -> None:
        self.root = root
        self.location = root

    def _path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def sha256_of(self, name: str) -> Optional[str]:
        path = self._path(name)
        return file_digest(path)[0] if os.path.isfile(path) else None

    def fetch(self, name: str, local_path: str) -> bool:
        if not os.path.isfile(self._path(name)):
            return False
        shutil.copyfile(self._path(name), local_path)
        return True

    def store(self, name: str, local_path: str) -> None:
        os.makedirs(self.root, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".%s." % name, dir=self.root)
        os.close(handle)
        try:
            shutil.copyfile(local_path, temporary)
            os.chmod(temporary, 0o644)
            os.replace(temporary, self._path(name))
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)


class HttpRepository(Repository):
    """A raw HTTP repository: GET and HEAD read, PUT writes (basic auth when credentials are given)."""

    def __init__(
        self,
        base_url: str,
        username: Optional[str],
        password: Optional[str],
        validate_certs: bool,
        ca_path: Optional[str],
    ) -> None:
        try:
            import requests  # noqa: PLC0415 - only HTTP repositories need it
        except ImportError:
            raise ArtifactError("HTTP repositories need the Python package 'requests' on the controller") from None
        self.location = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.verify = (ca_path or True) if validate_certs else False
        if username:
            self.session.auth = (username, password or "")
        self.errors: Any = requests.RequestException

    def _url(self, name: str) -> str:
        return "%s/%s" % (self.location, urllib.parse.quote(name))

    def _get(self, name: str) -> Any:
        try:
            response = self.session.get(self._url(name), stream=True, timeout=TIMEOUT)
        except self.errors as exc:
            raise ArtifactError("repository %s cannot be read (%s)" % (self._url(name), exc)) from None
        if response.status_code == 404:
            response.close()
            return None
        self._check(response, "GET", name)
        return response

    def sha256_of(self, name: str) -> Optional[str]:
        response = self._get(name)
        if response is None:
            return None
        hasher = hashlib.sha256()
        with response:
            for chunk in response.iter_content(CHUNK_SIZE):
                hasher.update(chunk)
        return hasher.hexdigest()

    def fetch(self, name: str, local_path: str) -> bool:
        response = self._get(name)
        if response is None:
            return False
        with response, open(local_path, "wb") as out:
            for chunk in response.iter_content(CHUNK_SIZE):
                out.write(chunk)
        return True

    def store(self, name: str, local_path: str) -> None:
        try:
            with open(local_path, "rb") as body:
                response = self.session.put(self._url(name), data=body, timeout=TIMEOUT)
        except self.errors as exc:
            raise ArtifactError("repository %s cannot be written (%s)" % (self._url(name), exc)) from None
        self._check(response, "PUT", name)

    def _check(self, response: Any, method: str, name: str) -> None:
        if response.status_code in (200, 201, 204):
            return
        hint = " check url_username and url_password" if response.status_code in (401, 403) else ""
        raise ArtifactError(
            "repository %s answered HTTP %d to %s of %s;%s" % (self.location, response.status_code, method, name, hint)
        )


def open_repository(
    location: str,
    username: Optional[str] = None,
    password: Optional[str] = None,
    validate_certs: bool = True,
    ca_path: Optional[str] = None,
) -> Repository:
    scheme = urllib.parse.urlsplit(location).scheme
    if scheme in ("http", "https"):
        return HttpRepository(location, username, password, validate_certs, ca_path)
    if scheme == "file":
        return DirectoryRepository(urllib.parse.unquote(urllib.parse.urlsplit(location).path))
    if scheme:
        raise ArtifactError(
            "repository %r has the unsupported scheme %r; use a directory, file://, http:// or https://"
            % (location, scheme)
        )
    return DirectoryRepository(location)

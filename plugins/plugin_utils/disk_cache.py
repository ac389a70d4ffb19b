# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Content-addressed JSON files that spare later ansible-playbook runs work an earlier run did.

Every task runs in a new process, so per-process caches never help a pipeline. What is kept here
is a pure function of its key: callers name an entry by the sha256 of everything the result
depends on (the input bytes, the code that computed it, library versions), so a changed input or
upgraded code is a miss, never a stale answer. Only successful results are stored, so errors are
reported the same way on every run.

Users: calendar/cache.py (expanded iCalendar occurrences) and policy/loader.py (policies that
passed validation). Writes are atomic (temporary file, then rename); an unreadable or corrupt
entry is a miss and an unwritable directory only means no cache.

Directory: ``RELOPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/relops.release``, else
``~/.cache/relops.release``; one subdirectory per kind of entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any, Iterable, List, Mapping, Optional


def cache_dir(environ: Optional[Mapping[str, str]] = None) -> str:
    """Where controller-side caches live (RELOPS_CACHE_DIR, XDG_CACHE_HOME or ~/.cache)."""
    env = os.environ if environ is None else environ
    if env.get("RELOPS_CACHE_DIR"):
        return env["RELOPS_CACHE_DIR"]
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "relops.release")


def cache_key(kind: str, parts: Iterable[Any]) -> str:
    """sha256 naming one entry: the kind and every part (bytes as they are, anything else as text)."""
    digest = hashlib.sha256(kind.encode("utf-8"))
    for part in parts:
        digest.update(b"\0")
        digest.update(part if isinstance(part, bytes) else str(part).encode("utf-8"))
    return digest.hexdigest()


def file_digests(directory: str, names: Iterable[str]) -> List[str]:
    """sha256 of source files a cached result depends on, so editing the code invalidates the entries."""
    digests = []
    for name in names:
        with open(os.path.join(directory, name), "rb") as handle:
            digests.append(hashlib.sha256(handle.read()).hexdigest())
    return digests


def read_entry(kind: str, key: str) -> Optional[Any]:
    """The stored JSON document, or None when there is none or it cannot be read."""
    try:
        with open(_path(kind, key), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def write_entry(kind: str, key: str, document: Any) -> None:
    """Store ``document`` atomically; failing to write only costs the next run the work again."""
    path = _path(kind, key)
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(document, stream, separators=(",", ":"))
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        # A read-only home or a full disk is no reason to fail a task.
        return


def _path(kind: str, key: str) -> str:
    return os.path.join(cache_dir(), kind, key + ".json")

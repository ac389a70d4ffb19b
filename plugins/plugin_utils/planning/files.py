# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a controller-side file only when its content changes, atomically, honouring check mode.

Used for the plan's exports and the flagd flag file: a reader (a calendar tool, flagd's file or
HTTP sync) never sees a half-written file, and an unchanged file keeps its mtime, so flagd does not
reload for nothing.
"""

from __future__ import annotations

import os
import tempfile
from typing import Optional, Tuple


def read_bytes(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_if_changed(path: str, content: bytes, check_mode: bool, mode: int = 0o644) -> Tuple[bool, Optional[bytes]]:
    """Return (changed, previous content); write through a temporary file and a rename unless check mode."""
    previous = read_bytes(path)
    if previous == content:
        return False, previous
    if check_mode:
        return True, previous
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path))
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return True, previous

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The one rule for relative controller paths, shared by every module that reads or writes a file
    # on the controller (docs/paths.md).
    DOCUMENTATION = r"""
options: {}
notes:
  - Relative controller paths in this module's options (files it reads or writes on the controller,
    and the calendar files that policies and plans name) are relative to the directory of the playbook,
    as ansible-core's own controller-side options are, not to the current directory; C(~) and absolute
    paths are kept. The same playbook therefore reads the same files on a laptop, in CI and in AWX.
"""

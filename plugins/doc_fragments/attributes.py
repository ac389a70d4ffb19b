# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Support levels shared by every controller-side action of the collection.
    # Use with ansible.builtin.action_common_attributes(.flow), which hold the
    # descriptions; each module adds its own check_mode and diff_mode entries.
    CONTROLLER = r"""
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  platform:
    platforms: all
"""

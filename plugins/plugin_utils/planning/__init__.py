# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release planning (issue 12): the plan's schema and model, its analysis and its exports."""

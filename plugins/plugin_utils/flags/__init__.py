# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Feature flags (issue 12): flagd flag files and Unleash's admin API, behind one desired-state model."""

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Delivery metrics (DORA) and release reports built from the ledger and the audit trail (issue 11)."""

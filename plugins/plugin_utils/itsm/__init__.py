# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Change requests and the CMDB behind one interface: the ``local`` ledger backend and ServiceNow."""

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tamper-evident audit trail, shared by the audit callback and the audit_verify action.

One implementation of each mechanism: canonical JSON lines and their hashes
(``canonical``), redaction (``redaction``), HMAC and Ed25519 sealing
(``sealing``), the locked, rotating, hash-chained writer (``trail``), the
verifier (``verify``) and the remote sinks with their disk spool (``sinks``).
"""

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: audit_verify
short_description: Verify a relops.release audit trail (hash chain, MACs, signed checkpoints)
version_added: 0.1.0
description:
  - Reads an audit trail written by the P(relops.release.audit#callback) callback, one or more files across
    rotation, and checks that nothing was changed, removed, inserted, reordered or cut off.
  - Every line must carry C(seq) one above the line before it and C(prev) equal to the SHA-256 of the line before
    it; with O(hmac_key) or O(hmac_key_file) every line's MAC is checked; with O(public_keys) every checkpoint's
    Ed25519 signature is checked. The trail must end with a checkpoint.
  - Every line must lie in the range of some checkpoint (what the writer that sealed it had checked), a run's
    events must not follow its C(playbook_end), and the last run must have ended; a C(tamper_detected) line (a
    writer found the trail damaged and recorded it instead of sealing it) is reported as well.
  - With the ledger (O(ledger_anchors)), every checkpoint the audit callback anchored there for this trail must
    still be in the trail, byte for byte, which catches a cut at the trail's end even after later runs appended.
  - Reports the first bad line with its reason (C(edited), C(removed), C(inserted), C(reordered), C(truncated),
    C(bad signature), C(unsealed), C(tampered), C(after end)), the gaps in the sequence, and the event counts of
    every run.
  - Without O(public_keys) and without an HMAC key only the chain is checked, which anyone could have rebuilt;
    the message then says C(chain only, not verified) and RV(verified) is false.
  - Never writes. Runs on the controller, where the trail is.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(cryptography) on the controller, for signatures
  - C(orjson) and C(msgspec) on the controller, optional (faster reading of large trails)
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  path:
    description:
      - The live trail file; rotated files beside it (V(<path>.<UTC time>)) are verified first, oldest first.
      - Defaults to E(RELOPS_AUDIT_PATH), then V($XDG_STATE_HOME/relops/audit/audit.jsonl), like the callback.
      - Mutually exclusive with O(files).
    type: path
  files:
    description: An explicit list of trail files, oldest first (for example copies an auditor received).
    type: list
    elements: path
  hmac_key:
    description: The trail's HMAC key. Prefer O(hmac_key_file).
    type: str
  hmac_key_file:
    description: A file holding the trail's HMAC key. Wins over O(hmac_key).
    type: path
  public_keys:
    description: Ed25519 public keys (PEM) trusted to sign checkpoints. Without them signatures are not checked.
    type: list
    elements: path
    default: []
  anchor:
    description:
      - A sequence number and line hash kept outside the trail (for example the C(checkpoint.last_seq) and
        C(checkpoint.head) of the last checkpoint a remote sink received). The trail must still hold that line,
        which also catches the removal of whole sealed runs from its end.
    type: dict
    suboptions:
      seq:
        description: The sequence number.
        type: int
        required: true
      head:
        description: The SHA-256 of the line with that sequence number.
        type: str
        required: true
  anchor_from:
    description:
      - Files kept by a remote sink the audit callback forwards to (the syslog receiver's log, a Splunk HEC export
        or webhook bodies, one message, envelope or JSON array per line). The last checkpoint in them becomes the
        anchor; with O(public_keys) its signature must verify. The trail must still hold that checkpoint line,
        byte for byte, so cutting whole sealed runs off the end of the trail is reported as C(truncated).
      - Mutually exclusive with O(anchor).
    type: list
    elements: path
  fail_on_problem:
    description: Fail the task when the trail does not verify. With V(false) the report is returned either way.
    type: bool
    default: true
  max_problems:
    description: Report at most this many problems.
    type: int
    default: 20
  archived:
    description:
      - Also verify the segments of this trail that M(relops.release.archive) moved out, as the archive
        index in the ledger (O(ledger_url)) names them. They are put back in chain order (compressed ones
        extracted to a temporary directory) and the whole chain is verified from seq 1.
      - An archived segment whose sha256 differs from the index, or that is missing, is a problem naming
        the archive file; problems in archived lines name the archive file (and tar member).
      - Works with O(path), not O(files).
    type: bool
    default: false
  ledger_anchors:
    description:
      - Check the trail against the checkpoint anchors the audit callback stored in the ledger (O(ledger_url)) for
        it. No ledger, or none holding anchors of the trail, is reported in RV(ledger_anchors), not as a problem.
    type: bool
    default: true
  current_run:
    description:
      - Instead of the whole trail, check what a gate requiring the audit trail checks - that the
        P(relops.release.audit#callback) callback writes this run and this very task (it exports
        E(RELOPS_AUDIT_TRAIL); the trail must hold the run's C(playbook_start) and the task's C(task_start)), and
        that the trail's tail verifies from the last checkpoint before the run, with O(hmac_key_file) and
        O(public_keys) (both required), against the ledger's newest anchor.
      - O(path) is the trail the check requires (default - the one the callback writes).
      - Returns RV(ok), C(msg) (naming what is wrong and the fix) and RV(current_run).
    type: bool
    default: false
  anchor_trail:
    description:
      - The trail's path as the callback wrote it, under which the ledger holds its anchors. Defaults to O(path)
        (or the default trail), or with O(files) to the last file; set it when verifying copies.
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
  - relops.release.ledger
attributes:
  check_mode:
    support: full
    details: The module only reads, so it runs the same in check mode.
  diff_mode:
    support: none
seealso:
  - plugin: relops.release.audit
    plugin_type: callback
"""

EXAMPLES = r"""
- name: Verify this controller's audit trail, MACs and checkpoint signatures
  relops.release.audit_verify:
    hmac_key_file: /etc/relops/audit.hmac
    public_keys:
      - /etc/relops/audit.pub
  run_once: true

- name: Verify the trail against the last checkpoint the syslog receiver got
  relops.release.audit_verify:
    hmac_key_file: /etc/relops/audit.hmac
    public_keys:
      - /etc/relops/audit.pub
    anchor_from:
      - /var/log/remote/relops-audit.log
  run_once: true

- name: Refuse to go on unless the audit trail is written for this run and its tail verifies
  relops.release.audit_verify:
    current_run: true
    hmac_key_file: /etc/relops/audit.hmac
    public_keys:
      - /etc/relops/audit.pub
  run_once: true

- name: Verify files an auditor received, against the last checkpoint the SIEM holds
  relops.release.audit_verify:
    files:
      - /srv/audit/audit.jsonl.20261125T000000000000Z
      - /srv/audit/audit.jsonl
    public_keys:
      - /srv/audit/keys/audit.pub
    anchor:
      seq: 48213
      head: 9f2c51b4a4e0c8d3f1b7e6a5d4c3b2a190817263544536271809f8e7d6c5b4a3
    fail_on_problem: false
  register: audit
  run_once: true
"""

RETURN = r"""
ok:
  description: Whether the trail verified (with O(current_run=true), whether the check passed).
  returned: always
  type: bool
files:
  description: The files verified, oldest first.
  returned: without current_run
  type: list
  elements: str
lines:
  description: How many lines the trail holds.
  returned: without current_run
  type: int
first_seq:
  description: The sequence number of the first line.
  returned: without current_run
  type: int
last_seq:
  description: The sequence number of the last line.
  returned: without current_run
  type: int
head:
  description: The SHA-256 of the last line (what the next line will chain to).
  returned: without current_run
  type: str
checkpoints:
  description: How many checkpoints the trail holds.
  returned: without current_run
  type: int
anchor:
  description:
    - The anchor checked (C(seq), C(head), C(found) whether the trail holds that seq, and C(source), the files it
      came from with O(anchor_from)); null without one.
  returned: without current_run
  type: dict
sealed_through:
  description: The sequence number of the last checkpoint that verified.
  returned: without current_run
  type: int
macs_checked:
  description: Whether MACs were checked.
  returned: without current_run
  type: bool
signatures_checked:
  description: Whether checkpoint signatures were checked.
  returned: without current_run
  type: bool
runs:
  description: Per run id, its event count, first and last seq and time, whether it ended, and its outcome.
  returned: without current_run
  type: dict
gaps:
  description: Missing sequence ranges.
  returned: without current_run
  type: list
  elements: dict
  contains:
    after_seq:
      description: The last sequence number before the gap.
      type: int
    first_missing:
      description: The first missing sequence number.
      type: int
    last_missing:
      description: The last missing sequence number.
      type: int
first_problem:
  description: The first bad line, or null when the trail verified.
  returned: without current_run
  type: dict
  contains:
    reason:
      description:
        - One of V(edited), V(removed), V(inserted), V(reordered), V(truncated), V(bad signature), V(unsealed),
          V(tampered), V(after end).
      type: str
    file:
      description: The file holding the line.
      type: str
    line:
      description: The line number in that file (1-based).
      type: int
    seq:
      description: The line's sequence number, when it has one.
      type: int
    detail:
      description: What exactly did not hold.
      type: str
problems:
  description: Every problem found (up to O(max_problems)), in trail order, shaped like RV(first_problem).
  returned: without current_run
  type: list
  elements: dict
verified:
  description:
    - Whether the trail verified with a key, the HMAC key or the checkpoints' public keys. False when only the
      chain was checked (no keys given), even if RV(ok) is true.
  returned: without current_run
  type: bool
ledger_anchors:
  description:
    - The ledger anchors checked, C(anchors) (how many the ledger holds for the trail), C(checked), C(held) and
      C(newest_seq); or C(anchors) 0 with a C(note) saying why none were checked.
  returned: without current_run
  type: dict
current_run:
  description:
    - With O(current_run=true), the readiness answer - C(ready), C(reason), C(run_id), C(trail) and what was
      checked (C(from_seq), C(to_seq), C(lines), C(anchor_seq)). The other return values are then absent.
  returned: with current_run=true
  type: dict
relops_audit:
  description: The structured event the audit callback records for this verification.
  returned: without current_run
  type: dict
archived_segments:
  description:
    - With O(archived=true), each archived segment verified, with its archive id, original and archive
      path, first and last seq, and whether its sha256 matched the index.
  returned: with archived=true
  type: list
  elements: dict
  sample:
    - archive_id: arc-5f0c1d2e3a4b5c6d
      original_path: /var/lib/relops/audit/audit.jsonl.20261001T000000000000Z
      archive_path: /srv/archive/audit/audit/audit.jsonl.20261001T000000000000Z
      first_seq: 1
      last_seq: 48211
      sha256_ok: true
"""

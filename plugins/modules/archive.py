# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: archive
short_description: Archive old release packages, audit segments and reports by a retention policy
version_added: 0.1.0
description:
  - Moves what a retention policy no longer keeps out of artifact directories, audit trails and report
    directories into an archive directory (O(dest)), as plain files or compressed as C(.tar.gz) or
    C(.tar.zst), with the sha256 of every file recorded in the archive index in the release ledger.
  - "The policy keeps the newest O(policy.keep_last) releases of each service (SemVer precedence, or the
    O(scheme) given), everything newer than O(policy.keep_days) days, and everything under a legal hold
    (O(policy.holds)). A held item is never archived and the result says which hold kept it."
  - A release that the ledger says is deployed (the latest successful deployment of its service to an
    environment) or is the rollback target (the previous successful version there) is never archived.
    When the policy as written would archive one, the task fails before changing anything, naming the
    service, version, environment and role, and the fix (raise O(policy.keep_last) or add a hold).
  - Release packages are files named C(<service>-<version>.tar.gz) or C(.tar.zst), as
    M(relops.release.package) and M(relops.release.promote) lay them out; files named after a package
    with a further suffix (its C(.intoto.json) envelope) travel with it.
  - Audit trails are archived by whole closed segments only (the rotated C(<trail>.<UTC time>) files the
    audit callback leaves); the live file is never touched. The index records each segment's first and
    last sequence number and the hash of its last line, and M(relops.release.audit_verify) with
    O(relops.release.audit_verify#module:archived=true) verifies the chain across the archive.
  - Report files (what M(relops.release.release_report) writes) are kept by age and by edition, the newest
    O(policy.keep_last) files of each name under a report directory.
  - The whole plan is computed first; files are written to the archive and checked against their sha256,
    recorded in the ledger in one transaction, and only then removed from their sources. A failure leaves
    the sources as they were. A second run finds nothing more to archive and reports no change.
  - O(state=restored) puts items back from the archive, each file checked against the sha256 in the index
    before any is moved into place.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(zstandard), C(semver) and C(orjson) on the controller
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  state:
    description:
      - V(present) archives what the policy selects.
      - V(restored) puts the items named in O(restore) back where they were.
    type: str
    choices: [present, restored]
    default: present
  dest:
    description:
      - The archive directory, required with O(state=present). Items go to C(<dest>/<kind>/<source directory name>/).
        It must not lie inside a source.
      - A restore finds each item through the archive index and does not need it.
    type: path
  compression:
    description:
      - V(none) moves files as they are; V(tar.gz) or V(tar.zst) writes one compressed tar per item
        (a package and its envelope together). V(tar.zst) needs the Python C(zstandard) package on the controller.
    type: str
    choices: [none, tar.gz, tar.zst]
    default: none
  artifact_dirs:
    description: Directories holding release packages (an artifact repository directory or promotion store).
    type: list
    elements: path
    default: []
  audit_trails:
    description: Audit trail files (the audit callback's C(path)); their rotated segments are the candidates.
    type: list
    elements: path
    default: []
  report_dirs:
    description: Directories holding report files, searched to any depth (hidden files are skipped).
    type: list
    elements: path
    default: []
  scheme:
    description: The version scheme of the release packages, C(semver) or C(calver:<format>) such as C(calver:YYYY.0M.MICRO).
    type: str
    default: semver
  policy:
    description: The retention policy.
    type: dict
    default: {}
    suboptions:
      keep_last:
        description: How many of the newest releases of each service (and editions of each report) to keep; at least 1.
        type: int
        default: 3
      keep_days:
        description: Keep everything newer than this many days (a package's or report's modification time, an audit segment's last event).
        type: int
        default: 30
      holds:
        description:
          - Legal holds. An item is held when every field the hold gives matches; held items are never archived.
        type: list
        elements: dict
        default: []
        suboptions:
          service:
            description: Hold the releases of this service.
            type: str
          version:
            description: Hold this version (with O(policy.holds[].service), of that service only).
            type: str
          path:
            description: Hold items with a file whose absolute path matches this shell glob, for example C(*/2025-q1/*).
            type: str
          reason:
            description: Why the hold exists (the case or request); shown in the result.
            type: str
            required: true
  restore:
    description:
      - With O(state=restored), the items to put back, each an C(archive_id) or an original path that an
        archive run returned. All files of the item come back.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
  - relops.release.ledger
attributes:
  check_mode:
    support: full
    details:
      - Reports the plan (what would be archived, kept, held and why), or checks the sha256 of what
        would be restored; moves nothing and writes no ledger rows.
  diff_mode:
    support: full
    details: Shows each file's original path and its archive path.
notes:
  - A restored item is a candidate again on the next archive run; add a hold to keep it.
seealso:
  - module: relops.release.audit_verify
  - module: relops.release.promote
  - module: relops.release.release_report
"""

EXAMPLES = r"""
- name: Archive old releases, audit segments and reports
  relops.release.archive:
    dest: /srv/archive
    compression: tar.zst
    artifact_dirs:
      - /srv/artifacts/production
    audit_trails:
      - /var/lib/relops/audit/audit.jsonl
    report_dirs:
      - /srv/reports
    policy:
      keep_last: 5
      keep_days: 90
      holds:
        - service: payments
          version: 2.3.1
          reason: legal case 2026-114
        - path: "*/reports/2025-q4/*"
          reason: annual audit
  register: archived
  run_once: true

- name: Show the plan without moving anything
  relops.release.archive:
    dest: /srv/archive
    artifact_dirs: [/srv/artifacts/production]
    policy:
      keep_last: 2
  check_mode: true
  diff: true

- name: Put one release back (its sha256 is checked first)
  relops.release.archive:
    state: restored
    restore:
      - /srv/artifacts/production/payments-2.1.0.tar.gz

- name: Verify the audit chain across archived segments
  relops.release.audit_verify:
    path: /var/lib/relops/audit/audit.jsonl
    archived: true
"""

RETURN = r"""
archived:
  description: The items archived (or, in check mode, that would be), one entry per item.
  returned: with state=present
  type: list
  elements: dict
  contains:
    archive_id:
      description: The item's id in the archive index.
      type: str
    kind:
      description: C(artifact), C(audit) or C(report).
      type: str
    path:
      description: The item's main file as it was.
      type: str
    archive_path:
      description: Where the item went (a file, or the item's compressed tar).
      type: str
    reason:
      description: Why the policy archived it.
      type: str
    service:
      description: The release's service (artifacts only).
      type: str
    version:
      description: The release's version (artifacts only).
      type: str
    first_seq:
      description: The first sequence number of an audit segment.
      type: int
    last_seq:
      description: The last sequence number of an audit segment.
      type: int
    last_hash:
      description: The SHA-256 of an audit segment's last line, which the next segment's first line chains to.
      type: str
    files:
      description: Each file with its original path, archive path, tar member (or null), sha256 and size (sha256 is null in check mode).
      type: list
      elements: dict
  sample:
    - archive_id: arc-5f0c1d2e3a4b5c6d
      kind: artifact
      path: /srv/artifacts/production/payments-2.0.0.tar.gz
      archive_path: /srv/archive/artifact/production/payments-2.0.0.tar.gz.tar.zst
      reason: older than 90 days and not among the newest 5 releases of payments
      service: payments
      version: 2.0.0
      files:
        - original_path: /srv/artifacts/production/payments-2.0.0.tar.gz
          archive_path: /srv/archive/artifact/production/payments-2.0.0.tar.gz.tar.zst
          member: payments-2.0.0.tar.gz
          sha256: 9f2c0a7e5d1b4c3a29f2c0a7e5d1b4c3a29f2c0a7e5d1b4c3a29f2c0a7e5d1b
          size: 18233411
kept:
  description: The items kept, each with the reason (its rank, its age, or the chain head) and, when it is deployed or a rollback target, C(protected).
  returned: with state=present
  type: list
  elements: dict
  sample:
    - kind: artifact
      path: /srv/artifacts/production/payments-2.3.1.tar.gz
      service: payments
      version: 2.3.1
      reason: "release #1 of payments by version precedence (keep_last 5)"
      protected: [deployed in production]
held:
  description: The items a legal hold kept, each with the hold that matched.
  returned: with state=present
  type: list
  elements: dict
  sample:
    - kind: report
      path: /srv/reports/2025-q4/dora.html
      reason: "legal hold (path */reports/2025-q4/*): annual audit"
protected:
  description: The deployed releases and rollback targets the ledger names for the services seen.
  returned: with state=present
  type: list
  elements: dict
  sample:
    - service: payments
      version: 2.3.1
      environment: production
      role: deployed
      deployment_id: 41
      deployed_at: "2026-11-20T10:02:11.000000Z"
refused:
  description: When the policy would archive a deployed release or a rollback target, each such release (nothing was changed).
  returned: when refused
  type: list
  elements: dict
  sample:
    - service: payments
      version: 2.3.1
      path: /srv/artifacts/production/payments-2.3.1.tar.gz
      protected: [deployed in production]
      keep_last_needed: 6
restored:
  description: The files put back (or, in check mode, that would be), each verified against its sha256.
  returned: with state=restored
  type: list
  elements: dict
  sample:
    - archive_id: arc-5f0c1d2e3a4b5c6d
      kind: artifact
      original_path: /srv/artifacts/production/payments-2.1.0.tar.gz
      archive_path: /srv/archive/artifact/production/payments-2.1.0.tar.gz.tar.zst
      member: payments-2.1.0.tar.gz
      sha256: 9f2c0a7e5d1b4c3a29f2c0a7e5d1b4c3a29f2c0a7e5d1b4c3a29f2c0a7e5d1b
already_restored:
  description: The asks of O(restore) whose items were restored before (nothing to do).
  returned: with state=restored
  type: list
  elements: str
  sample: []
"""

# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: change_gate
short_description: Decide allow, deny or wait for a change before it touches an environment
version_added: 0.1.0
description:
  - Checks everything change governance asks before a deployment and answers with one decision record
    (V(allow), V(deny) or V(wait), every reason, the policy version and content digest, a digest of the inputs),
    written to the release ledger and the audit trail.
  - C(approval) the change (O(change)) is approved and in implement on the ITSM backend (local or ServiceNow),
    or the route is V(automatic), or a peer approved (O(peer_approver)) on the V(peer) route.
  - A standard change is pre-approved only when its template is listed in the policy's C(standard_templates)
    (by name, or by C(sys_id)); it then passes in scheduled or implement. On ServiceNow the template is the
    C(std_change_record_producer) that the change's C(std_change_producer_version) belongs to (its
    C(std_change_producer)); a retired or inactive template, an unlisted one, or a standard change without a
    template version is denied. On the local backend the template is the name the change was created with.
  - C(window) now is inside the planned window (the change's start and end dates, or O(planned_start) and
    O(planned_end)).
  - C(blackout) no blackout now or in the rest of the window, from the policy's and the task's calendar sources
    (docs/calendars.md), unless an exemption or the emergency policy (C(gate.emergency_during_blackout)) applies.
  - C(conflict) no other open change on the same CIs or their parents or children overlaps the window.
  - C(stabilization) the service is not in a stabilization period in the environment; only emergency changes pass.
  - C(readiness) the readiness review (as in M(relops.release.readiness_check)) passes, when the policy requires it.
  - C(lock) the service lock (M(relops.release.release_lock)) is free or held by this run.
  - C(segregation_of_duties) on the V(peer) route the requester is not the approver.
  - A V(wait) decision (approval pending, window not open yet, a blackout ending inside the window, a
    stabilization period, a held lock) is re-evaluated with backoff up to O(wait_timeout).
  - When a backend the gate needs does not answer, the gate denies, unless the policy's C(backends) says
    V(fail_open) for it.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(icalendar), C(recurring-ical-events) and C(croniter) on the controller, for the calendars
  - C(requests) on the controller, only for the ServiceNow backend
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  service:
    description: The service being changed.
    type: str
    required: true
  environment:
    description: The target environment.
    type: str
    default: production
  version:
    description: The version being deployed.
    type: str
    required: true
  release_id:
    description:
      - The release record the gate decides from (RV(relops.release.artifact_verify#module:release_id)). The
        route, change type and risk come from the record's C(risk) stage (written by
        M(relops.release.risk_assess) with O(relops.release.risk_assess#module:release_id)), the signatures from
        its C(verification) stage, the change from O(change) or the record; the decision, the change's
        approvers and, on V(allow), the permit are written back into the record.
      - Required in an environment the policy marks enforced (C(environments.<name>.enforced); production in
        the default policy). There O(assessment), O(route), O(risk), O(change_type) and O(peer_approver) are
        refused; elsewhere they are used and recorded as caller claims (an C(evidence) check says so).
    type: str
  hosts:
    description: With O(release_id), the hosts the permit covers. Default is the host the task runs for.
    type: list
    elements: str
    default: []
  permit_key:
    description:
      - With O(release_id), the PEM private key (Ed25519, ECDSA P-256 or RSA) that signs the release permit on
        V(allow). Default is the C(relops_permit_key) variable. Required in an enforced environment; its public
        key belongs in the C(relops_permit_keyring) the host-changing modules check (docs/governance.md).
    type: path
  permit_key_passphrase:
    description: Passphrase of O(permit_key), when it is encrypted.
    type: str
  permit_transit:
    description:
      - With O(release_id), a key in OpenBao's (or HashiCorp Vault's) transit engine, reached with O(openbao),
        that signs the permit instead of O(permit_key); the private key never leaves the server. The envelope
        and its key id are the same as with a PEM key, so the guard verifies it with the transit key's exported
        public key in C(relops_permit_keyring) (the P(relops.release.transit_keyring#lookup) lookup lists it).
      - Default is the C(relops_permit_transit) variable (this mapping, or the key's name). Exclusive with
        O(permit_key) (and C(relops_permit_key)).
      - The key is read before the decision is recorded, so a sealed or unreachable server fails the task, naming
        the key's path, before anything is written.
    type: dict
    suboptions:
      key:
        description: The transit key's name (type C(ed25519) or C(ecdsa-p256)).
        type: str
        required: true
      mount:
        description: Where the transit engine is mounted.
        type: str
        default: transit
      version:
        description: The key version to sign with. Defaults to the latest; a version below C(min_encryption_version) is refused.
        type: int
  audit:
    description:
      - Where the gate checks the audit trail when the environment's policy says C(audit_required) (an
        C(audit) check). It passes only when the C(relops.release.audit) callback is writing this very run and
        task, and the trail's tail from the last checkpoint verifies and holds the ledger's newest anchor
        (docs/audit.md); otherwise it denies, naming what is wrong and the fix.
    type: dict
    default: {}
    suboptions:
      path:
        description: The trail file. Default is the one the callback reports for this run.
        type: path
      hmac_key_file:
        description: The trail's HMAC key. Default is the callback's E(RELOPS_AUDIT_HMAC_KEY_FILE).
        type: path
      public_keys:
        description: Public keys of the trail's checkpoint signatures.
        type: list
        elements: path
        default: []
  assessment:
    description:
      - The registered result of M(relops.release.risk_assess); supplies route, change type and risk.
      - A caller claim, refused in an enforced environment (give O(release_id) instead).
    type: dict
  route:
    description: The approval route, when not taken from O(assessment).
    type: str
    choices: [automatic, peer, cab]
  change_type:
    description: The change type, when not taken from O(assessment). Default V(normal).
    type: str
    choices: [standard, normal, emergency]
  risk:
    description: The risk level, when not taken from O(assessment) (recorded in the inputs).
    type: str
    choices: [low, moderate, high, very_high]
  change:
    description: The change request number on the ITSM backend.
    type: str
  cis:
    description:
      - CIs the change touches, in addition to the change's own, for the conflict check and calendar scope.
      - A service's name reads its CI in O(environment) (V(<service> (<environment>\))), and the CI of that exact
        name when there is none.
    type: list
    elements: str
    default: []
  planned_start:
    description: Start of the planned window (RFC 3339); default is the change's start date.
    type: str
  planned_end:
    description: End of the planned window (RFC 3339); default is the change's end date.
    type: str
  duration:
    description: Seconds from now that an V(automatic) change without a planned window may run.
    type: int
    default: 3600
  calendars:
    description: Calendar sources added to the policy's C(calendars) (see docs/calendars.md for their options).
    type: list
    elements: dict
    default: []
  base_dir:
    description:
      - Directory that relative calendar paths are read from.
      - Defaults to the playbook's directory; a relative O(base_dir) is itself read from the playbook's directory.
    type: path
  business_unit:
    description: The business unit, for calendar windows scoped by business unit.
    type: str
  team:
    description: The team making the change, for team-scoped exemptions.
    type: str
  readiness:
    description: The readiness review's inputs, the options of M(relops.release.readiness_check).
    type: dict
    suboptions:
      manifest:
        description: A file whose C(readiness) section declares the items.
        type: path
      rollback:
        description: C(plan) or C(not_needed).
        type: dict
        suboptions:
          plan:
            description: Reference to the rollback plan.
            type: str
          not_needed:
            description: Why no rollback is needed.
            type: str
      communication:
        description: The communication schedule.
        type: list
        elements: dict
      roster:
        description: The on-call roster file.
        type: path
      runbook:
        description: The runbook reference.
        type: str
      dependencies:
        description: Services that must already be deployed in the environment.
        type: list
        elements: dict
  peer_approver:
    description:
      - Who approved the change on the V(peer) route when there is no change request.
      - A caller claim, refused in an enforced environment, where approvals come from the ITSM.
    type: str
  requested_by:
    description:
      - Who requests the change, for segregation of duties. Default is the identity of the run (AWX's user,
        else the C(sudo) user, else the login).
      - Refused in an environment the policy enforces, like O(route) and O(peer_approver), because it would
        let the releaser pass as someone else; there the requester is always the run's identity.
    type: str
  lock:
    description: The release lock to check. Default is the service name.
    type: str
  policy:
    description: Path of the policy file. Default is the policy shipped with the collection.
    type: path
  subject:
    description: What the ledger files the decision under. Default is the change number, else service/environment/version.
    type: str
  wait_timeout:
    description: Seconds to keep re-evaluating a V(wait) decision. Default is the policy's C(gate.wait_timeout).
    type: float
  fail_on_deny:
    description: Fail the task unless the decision is V(allow). Set V(false) to branch on RV(decision) instead.
    type: bool
    default: true
extends_documentation_fragment:
  - relops.release.paths
  - relops.release.openbao
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
  - relops.release.itsm
  - relops.release.ledger
attributes:
  check_mode:
    support: full
    details: Decides as usual but stores nothing (no decision record, no exemption use) and does not wait.
  diff_mode:
    support: none
notes:
  - The gate reports RV(ignore:changed=false); storing its decision record is bookkeeping, not a change to the release.
seealso:
  - module: relops.release.risk_assess
  - module: relops.release.readiness_check
  - module: relops.release.exemption
  - module: relops.release.stabilization
"""

EXAMPLES = r"""
- name: Verify the package and open its release record (production is enforced by the default policy)
  relops.release.artifact_verify:
    path: /srv/releases/payments-api-2.4.0.tar.gz
    checksum: sha256:9f2c0d6c4b4e5f0a8c1b2e3d4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6
    envelope: /srv/releases/payments-api-2.4.0.tar.gz.intoto.json
    keyring: /etc/relops/keyring.yml
    environment: production
    record: true
  register: verified

- name: Assess, into the record
  relops.release.risk_assess:
    service: payments-api
    environment: production
    release_class: operational
    cis: [payments-api]
    junit: [reports/unit.xml]
    release_id: "{{ verified.release_id }}"

- name: Open the change, planned from now for two hours (the gate checks that now is inside the window)
  relops.release.change_request:
    correlation_id: payments-api-2.4.0
    short_description: Deploy payments-api 2.4.0
    configuration_items: [payments-api]
    start_date: "{{ '%Y-%m-%d %H:%M:%S' | strftime(now().timestamp() | int, utc=true) }}"
    end_date: "{{ '%Y-%m-%d %H:%M:%S' | strftime(now().timestamp() | int + 7200, utc=true) }}"
    state: authorize
  register: change

- name: The CAB approves it (run as a CAB member; on ServiceNow the CAB approves in the instance)
  relops.release.change_request:
    number: "{{ change.change.number }}"
    approval: approved
    approval_comments: CAB 2026-48
    state: implement

# The gate decides from the record that artifact_verify opened and risk_assess wrote into, and signs a
# permit for the hosts on allow.
- name: Gate the production deployment
  relops.release.change_gate:
    service: payments-api
    environment: production
    version: 2.4.0
    release_id: "{{ verified.release_id }}"
    hosts: "{{ groups['web'] }}"
    permit_key: /run/relops/permit-key.pem
    change: "{{ change.change.number }}"
    calendars:
      - {type: ics, path: calendars/freezes.ics, kind: blackout}
    readiness:
      rollback: {plan: "https://runbooks.example.com/payments/rollback"}
      communication: [{at: "2026-12-01T12:00:00Z", channel: "#payments-releases"}]
      roster: oncall/payments.yml
      runbook: https://runbooks.example.com/payments
    wait_timeout: 900
  register: gate

# The same gate with the permit signed in OpenBao's transit engine (BAO_ADDR and BAO_TOKEN in the environment).
- name: Gate the production deployment, permit signed by OpenBao
  relops.release.change_gate:
    service: payments-api
    environment: production
    version: 2.4.0
    release_id: "{{ verified.release_id }}"
    hosts: "{{ groups['web'] }}"
    permit_transit: {key: release-permits}
    change: "{{ change.change.number }}"
  register: gate

- name: Every host change below runs under the permit
  ansible.builtin.set_fact:
    relops_release_permit: "{{ gate.permit }}"

# Outside an enforced environment the caller may give the route itself; the gate records it as a claim.
- name: Gate a staging deployment with an automatic route
  relops.release.change_gate:
    service: payments-api
    environment: staging
    version: 2.4.0
    route: automatic
    readiness:
      rollback: {not_needed: staging is rebuilt nightly}
    fail_on_deny: false
"""

RETURN = r"""
decision:
  description: V(allow), V(deny) or V(wait).
  returned: always
  type: str
permit:
  description:
    - The release permit, a DSSE envelope holding an in-toto Statement (predicate type
      C(https://relops.example/release-permit/v1)) that binds release id, service, environment, version,
      artifact digest, change, hosts, C(not_before) and C(not_after). Give it to the host-changing modules
      (or set C(relops_release_permit)); docs/governance.md has the format.
  returned: on V(allow) with O(release_id) and a permit key
  type: dict
permit_id:
  description: The permit's id (also in the release record and the ledger's permits).
  returned: on V(allow) with O(release_id) and a permit key
  type: str
release_id:
  description: The release record the gate read, when O(release_id) was given.
  returned: always
  type: str
caller_claims:
  description: The route, risk and approver options the caller gave (recorded; refused when enforced).
  returned: always
  type: dict
approvers:
  description: Who approved the change, as the ITSM (or O(peer_approver)) says.
  returned: always
  type: list
  elements: str
reasons:
  description: One line per check, blocking ones first, as C(check outcome reason).
  returned: always
  type: list
  elements: str
policy_version:
  description: The policy's declared version and content digest (C(2026.4@sha256:...)).
  returned: always
  type: str
inputs_digest:
  description: sha256 of the policy digest, the arguments and everything the checks read.
  returned: always
  type: str
decided_at:
  description: When the decision was made (RFC 3339, UTC).
  returned: always
  type: str
allowed:
  description: Whether the decision is V(allow).
  returned: always
  type: bool
recorded:
  description: Whether the decision was stored in the ledger (false in check mode).
  returned: always
  type: bool
subject:
  description: What the decision is filed under.
  returned: always
  type: str
checks:
  description: One entry per check with C(check), C(outcome) (pass, wait, deny, waived, skipped) and C(reason).
  returned: always
  type: list
  elements: dict
exemptions_used:
  description: Names of the exemptions that waived a check.
  returned: always
  type: list
  elements: str
route:
  description: The approval route the gate applied.
  returned: always
  type: str
change_type:
  description: The change type the gate applied.
  returned: always
  type: str
risk:
  description: The risk level, when known.
  returned: always
  type: str
policy:
  description: The policy's name, declared version, content digest and source.
  returned: always
  type: dict
attempts:
  description: How many times the checks ran (more than one when a V(wait) was re-evaluated).
  returned: always
  type: int
"""

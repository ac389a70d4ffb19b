# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checkpoint anchors in the ledger (schema V27, table ``audit_anchors``).

Every checkpoint the audit callback writes is also stored here: the trail, the
run, the checkpoint's seq and the SHA-256 of its line. A trail file can be cut
at its end and go on growing; the ledger row cannot be cut with it, so the
writer (at the next run's start), the verifier and the gate's readiness check
compare the file with the newest anchor and notice the cut.

A small store over the ledger's backend, not more methods on ``Ledger``:
it takes an open ledger and runs each query as one short transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, Optional

from ansible_collections.relops.release.plugins.module_utils.timestamps import now_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, LedgerURL, open_ledger
from ansible_collections.relops.release.plugins.plugin_utils.ledger.backends import Backend, Row

_COLUMNS = (
    "trail, run_id, seq, head, first_seq, sealed_through, key_id, checkpoint_ts, recorded_at, recorded_by,"
    " cut_by_seq, cut_at"
)


@dataclass(frozen=True)
class Anchor:
    """One checkpoint as the ledger holds it."""

    trail: str
    run_id: str
    seq: int
    head: str
    first_seq: int
    sealed_through: int
    key_id: Optional[str]
    checkpoint_ts: str
    recorded_at: str = ""
    recorded_by: str = ""
    cut_by_seq: Optional[int] = None

    @classmethod
    def of_checkpoint(cls, trail: str, event: Mapping[str, Any], head: str) -> "Anchor":
        """The anchor of a checkpoint event (as parsed from its line) whose line hashes to ``head``."""
        checkpoint = event["checkpoint"]
        return cls(
            trail=trail,
            run_id=str(event.get("run_id") or ""),
            seq=int(event["seq"]),
            head=head,
            first_seq=int(checkpoint.get("first_seq") or checkpoint["last_seq"]),
            sealed_through=int(checkpoint["last_seq"]),
            key_id=checkpoint.get("key_id"),
            checkpoint_ts=str(event.get("ts", "")),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "trail": self.trail,
            "run_id": self.run_id,
            "seq": self.seq,
            "head": self.head,
            "first_seq": self.first_seq,
            "sealed_through": self.sealed_through,
            "key_id": self.key_id,
            "checkpoint_ts": self.checkpoint_ts,
            "recorded_at": self.recorded_at,
            "recorded_by": self.recorded_by,
            "cut_by_seq": self.cut_by_seq,
        }


def _anchor(row: Row) -> Anchor:
    return Anchor(
        trail=row["trail"],
        run_id=row["run_id"],
        seq=int(row["seq"]),
        head=row["head"],
        first_seq=int(row["first_seq"]),
        sealed_through=int(row["sealed_through"]),
        key_id=row["key_id"],
        checkpoint_ts=row["checkpoint_ts"],
        recorded_at=row["recorded_at"],
        recorded_by=row["recorded_by"],
        cut_by_seq=None if row["cut_by_seq"] is None else int(row["cut_by_seq"]),
    )


class AnchorStore:
    """Reads and writes ``audit_anchors`` through an open ledger's backend."""

    def __init__(self, ledger: Ledger) -> None:
        self.backend: Backend = ledger.backend

    def record(self, anchor: Anchor, recorded_by: str) -> bool:
        """Store an anchor; return False when the ledger holds that very line already."""
        with self.backend.transaction(write=True) as cursor:
            return (
                cursor.execute(
                    "INSERT INTO audit_anchors (%s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)"
                    " ON CONFLICT (trail, seq, head) DO NOTHING" % _COLUMNS,
                    (
                        anchor.trail,
                        anchor.run_id,
                        anchor.seq,
                        anchor.head,
                        anchor.first_seq,
                        anchor.sealed_through,
                        anchor.key_id,
                        anchor.checkpoint_ts,
                        now_timestamp(),
                        recorded_by,
                    ),
                )
                == 1
            )

    def newest(self, trail: str) -> Optional[Anchor]:
        """The trail's anchor with the highest seq that no run has found cut off, or None."""
        with self.backend.transaction(write=False) as cursor:
            row = cursor.one(
                "SELECT %s FROM audit_anchors WHERE trail = ? AND cut_by_seq IS NULL ORDER BY seq DESC, id DESC"
                " LIMIT 1" % _COLUMNS,
                (trail,),
            )
        return _anchor(row) if row is not None else None

    def holds(self, trail: str, seq: int, head: str) -> bool:
        """Whether the ledger holds an anchor for exactly this line of the trail."""
        with self.backend.transaction(write=False) as cursor:
            row = cursor.one(
                "SELECT id FROM audit_anchors WHERE trail = ? AND seq = ? AND head = ?", (trail, seq, head)
            )
        return row is not None

    def of_trail(self, trail: str) -> List[Anchor]:
        """Every anchor of a trail, cut ones included, by seq."""
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all("SELECT %s FROM audit_anchors WHERE trail = ? ORDER BY seq, id" % _COLUMNS, (trail,))
        return [_anchor(row) for row in rows]

    def of_run(self, run_id: str) -> List[Anchor]:
        """The anchors of one run's checkpoints, by seq: what a release record refers to."""
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all("SELECT %s FROM audit_anchors WHERE run_id = ? ORDER BY seq, id" % _COLUMNS, (run_id,))
        return [_anchor(row) for row in rows]

    def standing(self, trail: str) -> List[Anchor]:
        """The trail's anchors no run has found cut off, newest (highest seq) first."""
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(
                "SELECT %s FROM audit_anchors WHERE trail = ? AND cut_by_seq IS NULL ORDER BY seq DESC, id DESC"
                % _COLUMNS,
                (trail,),
            )
        return [_anchor(row) for row in rows]

    def mark_cut(self, anchors: List[Anchor], tamper_seq: int) -> int:
        """Mark anchors whose lines the trail no longer holds, as recorded by the event at ``tamper_seq``."""
        now = now_timestamp()
        marked = 0
        with self.backend.transaction(write=True) as cursor:
            for anchor in anchors:
                marked += cursor.execute(
                    "UPDATE audit_anchors SET cut_by_seq = ?, cut_at = ? WHERE trail = ? AND seq = ? AND head = ?"
                    " AND cut_by_seq IS NULL",
                    (tamper_seq, now, anchor.trail, anchor.seq, anchor.head),
                )
        return marked


class LedgerAnchors:
    """The audit callback's link to the ledger: opens it for each call and closes it again.

    The callback lives in the ansible-playbook process, which forks a worker
    for every task; a database connection kept open across those forks could
    be closed under the parent by a child. Checkpoints are few (one per run and
    one per ``checkpoint_every`` events), so a short connection each time costs
    little.
    """

    def __init__(self, url: LedgerURL, applied_by: str) -> None:
        self.url = url
        self.applied_by = applied_by

    def standing(self, trail: str) -> List[Anchor]:
        with open_ledger(self.url, applied_by=self.applied_by) as ledger:
            return AnchorStore(ledger).standing(trail)

    def record(self, anchors: List[Anchor], recorded_by: str) -> int:
        """Store anchors through one connection; return how many were new."""
        with open_ledger(self.url, applied_by=self.applied_by) as ledger:
            store = AnchorStore(ledger)
            return sum(store.record(anchor, recorded_by) for anchor in anchors)

    def mark_cut(self, anchors: List[Anchor], tamper_seq: int) -> int:
        with open_ledger(self.url, applied_by=self.applied_by) as ledger:
            return AnchorStore(ledger).mark_cut(anchors, tamper_seq)

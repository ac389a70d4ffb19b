-- relops.release ledger, schema version 2 (SQLite): the local ITSM backend.
-- Change requests with the ServiceNow state machine and approvals, and a CMDB
-- of configuration items with classes, attributes and typed relations.
-- Other fields and attributes are JSON documents stored as text.

CREATE TABLE itsm_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sys_id TEXT NOT NULL UNIQUE,
    number TEXT UNIQUE,
    type TEXT NOT NULL CHECK (type IN ('normal', 'emergency', 'standard')),
    state TEXT NOT NULL,
    approval TEXT NOT NULL,
    correlation_id TEXT UNIQUE,
    fields TEXT NOT NULL,
    cis TEXT NOT NULL,
    run_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE itsm_change_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    change_sys_id TEXT NOT NULL REFERENCES itsm_changes (sys_id),
    event TEXT NOT NULL,
    detail TEXT NOT NULL,
    run_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL
);

CREATE INDEX itsm_change_events_change ON itsm_change_events (change_sys_id, id);

CREATE TABLE itsm_approvals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    change_sys_id TEXT NOT NULL REFERENCES itsm_changes (sys_id),
    approver TEXT,
    state TEXT NOT NULL CHECK (state IN ('requested', 'approved', 'rejected')),
    comments TEXT,
    requested_at TEXT NOT NULL,
    decided_at TEXT
);

CREATE INDEX itsm_approvals_change ON itsm_approvals (change_sys_id, id);

CREATE TABLE itsm_cis (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sys_id TEXT NOT NULL UNIQUE,
    class TEXT NOT NULL,
    name TEXT,
    attributes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX itsm_cis_class_name ON itsm_cis (class, name);

CREATE TABLE itsm_ci_relations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sys_id TEXT NOT NULL UNIQUE,
    parent TEXT NOT NULL REFERENCES itsm_cis (sys_id),
    child TEXT NOT NULL REFERENCES itsm_cis (sys_id),
    type TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (parent, child, type)
);

CREATE INDEX itsm_ci_relations_child ON itsm_ci_relations (child);

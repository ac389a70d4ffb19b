-- relops:phase=expand
-- Release 1.2.0 adds tags (a new table, so earlier releases keep working).
CREATE TABLE item_tags (item_id INTEGER NOT NULL REFERENCES items (id), tag TEXT NOT NULL);

-- relops:phase=expand
-- Release 1.1.0 shows a note per item: an added column with a default, so 1.0.0 keeps working.
ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT '';
UPDATE items SET note = 'best seller' WHERE id = 1;

-- The items the demo service lists.
CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO items (id, name) VALUES (1, 'teapot'), (2, 'kettle');

-- First migration of the users domain: a key/value table about this database.
CREATE TABLE platform_info (
    key   text PRIMARY KEY,
    value text
);

INSERT INTO platform_info (key, value) VALUES ('domain', 'users');

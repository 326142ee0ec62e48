-- Version 5 → 6: bans set from the web console.

-- Who may not connect: a client id, a user name (compared by its lower-case
-- form) or an address. expires_at NULL is a ban until it is lifted.
CREATE TABLE bans (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('client_id', 'username', 'address')),
    value      TEXT    NOT NULL CHECK (length(value) > 0),
    reason     TEXT    NOT NULL DEFAULT '',
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    UNIQUE (kind, value)
);

PRAGMA user_version = 6;

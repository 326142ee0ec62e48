-- Version 2 → 3: durable wills.

-- The will of a persistent session: its connected client's, or one waiting
-- on its Will Delay Interval since the session's disconnected_at. After a
-- restart it is published when that delay runs out or the session ends,
-- unless the client comes back first. properties is the encoded MQTT 5
-- property block, as in messages.
CREATE TABLE wills (
    client_id  TEXT    PRIMARY KEY REFERENCES sessions (client_id)
                       ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    topic      TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    qos        INTEGER NOT NULL CHECK (qos BETWEEN 0 AND 2),
    retain     INTEGER NOT NULL CHECK (retain IN (0, 1)),
    properties BLOB    NOT NULL,
    expires_at INTEGER,
    delay      INTEGER NOT NULL CHECK (delay BETWEEN 0 AND 4294967295)
) WITHOUT ROWID;

PRAGMA user_version = 3;

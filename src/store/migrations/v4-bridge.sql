-- Version 3 → 4: the bridges' forward queues and inbound QoS 2 ids.

-- Each bridge's forward queue: messages bound upstream, in seq order, kept
-- until the upstream acknowledged them. state: 0 waiting, 1 sent awaiting
-- PUBACK/PUBREC (QoS 2 rows record their packet id before the PUBLISH
-- leaves), 2 PUBREL sent awaiting PUBCOMP. topic is the upstream topic.
CREATE TABLE bridge_queue (
    bridge     TEXT    NOT NULL,
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    topic      TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    qos        INTEGER NOT NULL CHECK (qos BETWEEN 1 AND 2),
    retain     INTEGER NOT NULL CHECK (retain IN (0, 1)),
    properties BLOB    NOT NULL,
    expires_at INTEGER,
    packet_id  INTEGER CHECK (packet_id BETWEEN 1 AND 65535),
    state      INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 2),
    PRIMARY KEY (bridge, seq)
) WITHOUT ROWID;

-- Inbound QoS 2 packet ids a bridge's upstream sent, delivered locally and
-- not yet released (PUBREL), so a resend after a restart is not delivered twice.
CREATE TABLE bridge_qos2_in (
    bridge    TEXT    NOT NULL,
    packet_id INTEGER NOT NULL CHECK (packet_id BETWEEN 1 AND 65535),
    PRIMARY KEY (bridge, packet_id)
) WITHOUT ROWID;

PRAGMA user_version = 4;

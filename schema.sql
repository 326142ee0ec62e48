-- Outpost durable store: the whole schema, version 7 (PRAGMA user_version = 7).
--
-- store::open applies this file, in one transaction, to a database whose
-- user_version is 0 (a new file). A database at an older version is brought
-- up by the step migrations in src/store/migrate.rs instead; this file always
-- describes the newest version, and its last line sets that version.
-- Fixtures: src/store/fixtures/vN.sql is the schema (and a few rows) of each
-- older version N; src/store/migrate.rs tests that each one upgrades, and
-- tests/store.rs serves tests/fixtures/v1.db (a version-1 database file).
--
-- Times are unix seconds (INTEGER). Foreign keys that the broker fills within
-- one group commit are DEFERRABLE INITIALLY DEFERRED, so the order of writes
-- inside a commit does not matter; they are still checked at COMMIT.

-- Accounts that may connect and log in to the web pages.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    created_at    INTEGER NOT NULL DEFAULT (unixepoch())
);

-- Password-reset questions; the answer is hashed like a password. The chat
-- service keeps one question per user (setting a new one replaces it).
CREATE TABLE security_questions (
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    question    TEXT    NOT NULL,
    answer_hash TEXT    NOT NULL,
    PRIMARY KEY (user_id, question)
) WITHOUT ROWID;

-- Topic access rules. username NULL is a pattern rule for everyone; topic may
-- contain %u (user name) and %c (client id).
CREATE TABLE acl_rules (
    id       INTEGER PRIMARY KEY,
    username TEXT    REFERENCES users (name) ON DELETE CASCADE ON UPDATE CASCADE,
    topic    TEXT    NOT NULL CHECK (length(topic) > 0),
    access   TEXT    NOT NULL CHECK (access IN ('read', 'write', 'readwrite', 'deny'))
);
CREATE INDEX acl_rules_username ON acl_rules (username);

-- Last connect and disconnect of every client id seen, for the web pages.
CREATE TABLE client_records (
    client_id         TEXT    PRIMARY KEY,
    username          TEXT,
    address           TEXT    NOT NULL,
    protocol          INTEGER NOT NULL,
    connected_at      INTEGER NOT NULL,
    disconnected_at   INTEGER,
    disconnect_reason TEXT
) WITHOUT ROWID;

-- Retained messages, one per topic. properties is the encoded MQTT 5
-- property block, opaque to the store.
CREATE TABLE retained (
    topic      TEXT    PRIMARY KEY,
    payload    BLOB    NOT NULL,
    qos        INTEGER NOT NULL CHECK (qos BETWEEN 0 AND 2),
    properties BLOB    NOT NULL,
    expires_at INTEGER
) WITHOUT ROWID;

-- Message bodies stored once and referenced by every session queue row that
-- delivers them; deleted when the last reference goes.
CREATE TABLE messages (
    id         INTEGER PRIMARY KEY CHECK (id >= 0),
    topic      TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    qos        INTEGER NOT NULL CHECK (qos BETWEEN 0 AND 2),
    retain     INTEGER NOT NULL CHECK (retain IN (0, 1)),
    properties BLOB    NOT NULL,
    expires_at INTEGER
);

-- Persistent sessions (clean start 0 or a non-zero expiry interval).
-- disconnected_at is NULL while the client is connected.
CREATE TABLE sessions (
    client_id       TEXT    PRIMARY KEY,
    expiry_interval INTEGER NOT NULL CHECK (expiry_interval BETWEEN 0 AND 4294967295),
    username        TEXT,
    disconnected_at INTEGER
) WITHOUT ROWID;

-- A session's subscriptions; filter is the full text, $share/group/ included.
-- options is the MQTT 5 subscription options byte.
CREATE TABLE subscriptions (
    client_id  TEXT    NOT NULL REFERENCES sessions (client_id)
                       ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    filter     TEXT    NOT NULL,
    options    INTEGER NOT NULL CHECK (options BETWEEN 0 AND 255),
    identifier INTEGER CHECK (identifier BETWEEN 1 AND 268435455),
    PRIMARY KEY (client_id, filter)
) WITHOUT ROWID;

-- A session's outbound queue and in-flight window, in seq order.
-- state: 0 queued, 1 sent awaiting PUBACK/PUBREC, 2 PUBREL sent awaiting PUBCOMP.
CREATE TABLE session_queue (
    client_id  TEXT    NOT NULL REFERENCES sessions (client_id)
                       ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    message_id INTEGER NOT NULL REFERENCES messages (id) DEFERRABLE INITIALLY DEFERRED,
    qos        INTEGER NOT NULL CHECK (qos BETWEEN 0 AND 2),
    packet_id  INTEGER CHECK (packet_id BETWEEN 1 AND 65535),
    state      INTEGER NOT NULL CHECK (state BETWEEN 0 AND 2),
    PRIMARY KEY (client_id, seq)
) WITHOUT ROWID;
-- Lets the orphan check after a delete find remaining references quickly.
CREATE INDEX session_queue_message_id ON session_queue (message_id);

-- Inbound QoS 2 packet ids received but not yet released (PUBREL), so
-- exactly-once delivery survives a restart.
CREATE TABLE qos2_received (
    client_id TEXT    NOT NULL REFERENCES sessions (client_id)
                      ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    packet_id INTEGER NOT NULL CHECK (packet_id BETWEEN 1 AND 65535),
    PRIMARY KEY (client_id, packet_id)
) WITHOUT ROWID;

-- Chat rooms, created on first use.
CREATE TABLE chat_rooms (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Chat messages; ids are handed out by the broker, increasing across rooms.
-- sender is the authenticated user name (kept when the account goes).
-- likes is the count of chat_likes rows, kept here so a page needs no join.
CREATE TABLE chat_messages (
    id      INTEGER PRIMARY KEY CHECK (id > 0),
    room_id INTEGER NOT NULL REFERENCES chat_rooms (id) DEFERRABLE INITIALLY DEFERRED,
    sender  TEXT    NOT NULL,
    sent_at INTEGER NOT NULL,
    body    TEXT    NOT NULL,
    likes   INTEGER NOT NULL DEFAULT 0 CHECK (likes >= 0)
);
-- History pages (last n, after or before an id) read this index, never scan.
CREATE INDEX chat_messages_room ON chat_messages (room_id, id);

-- One like per user per message.
CREATE TABLE chat_likes (
    message_id INTEGER NOT NULL REFERENCES chat_messages (id)
                       ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    username   TEXT    NOT NULL,
    PRIMARY KEY (message_id, username)
) WITHOUT ROWID;

-- Chat room members: a user joins a room by subscribing to its topic
-- (chat/r/<room>, no wildcard) and stays a member, online or not, until a
-- leave request. Direct conversations (rooms named '<a>/<b>') have none.
CREATE TABLE chat_members (
    room_id   INTEGER NOT NULL REFERENCES chat_rooms (id) DEFERRABLE INITIALLY DEFERRED,
    username  TEXT    NOT NULL,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, username)
) WITHOUT ROWID;

-- Who blocked whom: blocker takes no direct messages from blocked.
CREATE TABLE chat_blocks (
    blocker TEXT NOT NULL,
    blocked TEXT NOT NULL,
    PRIMARY KEY (blocker, blocked)
) WITHOUT ROWID;

-- How far each user has read each room or direct conversation: the newest
-- message id the user's page showed. Unread counts are the messages after it.
-- The broker writes a marker at most once per flush window (docs/chat.md),
-- never once per message seen.
CREATE TABLE chat_read (
    username   TEXT    NOT NULL,
    room_id    INTEGER NOT NULL REFERENCES chat_rooms (id) DEFERRABLE INITIALLY DEFERRED,
    message_id INTEGER NOT NULL,
    PRIMARY KEY (username, room_id)
) WITHOUT ROWID;

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

PRAGMA user_version = 7;

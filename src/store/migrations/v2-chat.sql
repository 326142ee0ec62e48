-- Version 1 → 2: the chat service's rooms, messages and likes.

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

PRAGMA user_version = 2;

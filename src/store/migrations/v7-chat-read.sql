-- Version 6 → 7: chat read markers.

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

PRAGMA user_version = 7;

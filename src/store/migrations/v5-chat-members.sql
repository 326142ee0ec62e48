-- Version 4 → 5: chat room members and blocked direct messages.

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

PRAGMA user_version = 5;

//! Presence: who is online in each room, told to the room in coalesced announcements.
//!
//! A user is online in a room while one of their connected sessions subscribes to the
//! room's own topic (`chat/r/<room>`; wildcards watch rooms, they are not presence).
//! Online for direct messages is kept the same way under the pseudo-room `@<user>`
//! (no room name holds `@`): a session of the user receiving all their direct messages. The
//! broker reports subscriptions and ends of connections as `SessionEvent`s; nothing is
//! done per message. Changes wait in a short window ([`WINDOW`]) and go out as one
//! QoS 0 announcement per room, net of what cancelled out (a reconnect inside the window
//! says nothing), so a thousand members coming back after a restart cost each member a
//! handful of announcements, not a thousand.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

/// How long changes gather before a room hears of them.
pub const WINDOW: Duration = Duration::from_millis(1000);

/// What changed for a user in a room, as announced: the payload's line kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// `j`: became a member.
    Joined,
    /// `q`: stopped being a member (a leave request).
    Left,
    /// `o`: came online.
    Online,
    /// `f`: went offline.
    Offline,
}

impl Change {
    pub fn letter(self) -> char {
        match self {
            Change::Joined => 'j',
            Change::Left => 'q',
            Change::Online => 'o',
            Change::Offline => 'f',
        }
    }
}

/// A room's changes in the open window: users whose online state may have changed, and
/// joins and leaves.
#[derive(Debug, Default)]
struct Pending {
    touched: HashSet<Box<str>>,
    memberships: Vec<(Change, Box<str>)>,
}

/// A room's net changes when a window closes, sorted by kind then name.
pub type Changes = BTreeSet<(Change, Box<str>)>;

/// The room topics each connected session subscribes to, and the online counts.
#[derive(Debug, Default)]
pub struct Presence {
    /// Connected session → its user and the rooms it subscribes to by name.
    sessions: HashMap<usize, (Box<str>, Vec<Box<str>>)>,
    /// Room → user → how many of the user's connected sessions subscribe to it.
    online: HashMap<Box<str>, HashMap<Box<str>, u32>>,
    /// Room → users online as last announced (what the window's changes are net of).
    announced: HashMap<Box<str>, HashSet<Box<str>>>,
    /// Room → users whose online state may have changed, plus joins and leaves, in the
    /// open window.
    pending: HashMap<Box<str>, Pending>,
    /// When the open window closes.
    due: Option<Instant>,
}

impl Presence {
    /// A session's user now receives `room`. True when it is the first such session of
    /// the user there.
    pub fn subscribed(&mut self, session: usize, user: &str, room: &str, now: Instant) -> bool {
        let entry = self
            .sessions
            .entry(session)
            .or_insert_with(|| (user.into(), Vec::new()));
        if entry.1.iter().any(|r| &**r == room) {
            return false;
        }
        entry.1.push(room.into());
        let count = self
            .online
            .entry(room.into())
            .or_default()
            .entry(user.into())
            .or_insert(0);
        *count += 1;
        let first = *count == 1;
        if first {
            self.touch(room, user, now);
        }
        first
    }

    /// A session stopped receiving `room`.
    pub fn unsubscribed(&mut self, session: usize, room: &str, now: Instant) {
        let Some((user, rooms)) = self.sessions.get_mut(&session) else {
            return;
        };
        let Some(i) = rooms.iter().position(|r| &**r == room) else {
            return;
        };
        rooms.swap_remove(i);
        let user = user.clone();
        if rooms.is_empty() {
            self.sessions.remove(&session);
        }
        self.drop_one(room, &user, now);
    }

    /// A session's connection ended: it is online nowhere.
    pub fn offline(&mut self, session: usize, now: Instant) {
        if let Some((user, rooms)) = self.sessions.remove(&session) {
            for room in rooms {
                self.drop_one(&room, &user, now);
            }
        }
    }

    fn drop_one(&mut self, room: &str, user: &str, now: Instant) {
        let Some(users) = self.online.get_mut(room) else {
            return;
        };
        if let Some(count) = users.get_mut(user) {
            *count -= 1;
            if *count == 0 {
                users.remove(user);
                if users.is_empty() {
                    self.online.remove(room);
                }
                self.touch(room, user, now);
            }
        }
    }

    /// Records a join or leave for the window's announcement.
    pub fn membership(&mut self, room: &str, user: &str, change: Change, now: Instant) {
        self.open(now);
        self.pending
            .entry(room.into())
            .or_default()
            .memberships
            .push((change, user.into()));
    }

    fn touch(&mut self, room: &str, user: &str, now: Instant) {
        self.open(now);
        self.pending
            .entry(room.into())
            .or_default()
            .touched
            .insert(user.into());
    }

    fn open(&mut self, now: Instant) {
        if self.due.is_none() {
            self.due = Some(now + WINDOW);
        }
    }

    /// True when `user` has a connected session receiving `room`.
    pub fn is_online(&self, room: &str, user: &str) -> bool {
        self.online.get(room).is_some_and(|u| u.contains_key(user))
    }

    /// Users online in `room` (members or not).
    pub fn online_in(&self, room: &str) -> impl Iterator<Item = &str> {
        self.online
            .get(room)
            .into_iter()
            .flat_map(|u| u.keys().map(|k| &**k))
    }

    /// When the open window closes, if one is open.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// When the window is due, each room's net changes as (room, changes sorted by kind
    /// then name); empty before then.
    pub fn take_due(&mut self, now: Instant) -> Vec<(Box<str>, Changes)> {
        if self.due.is_none_or(|due| due > now) {
            return Vec::new();
        }
        self.due = None;
        let mut out = Vec::new();
        for (
            room,
            Pending {
                touched,
                memberships,
            },
        ) in std::mem::take(&mut self.pending)
        {
            let mut changes: Changes = memberships.into_iter().collect();
            let announced = self.announced.entry(room.clone()).or_default();
            for user in touched {
                let now_online = self
                    .online
                    .get(&room)
                    .is_some_and(|u| u.contains_key(&user));
                if now_online && announced.insert(user.clone()) {
                    changes.insert((Change::Online, user));
                } else if !now_online && announced.remove(&user) {
                    changes.insert((Change::Offline, user));
                }
            }
            if announced.is_empty() {
                self.announced.remove(&room);
            }
            if !changes.is_empty() {
                out.push((room, changes));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_inside_a_window_are_announced_net_once_per_room() {
        let mut p = Presence::default();
        let t0 = Instant::now();
        assert!(p.subscribed(1, "ana", "general", t0));
        assert!(!p.subscribed(2, "ana", "general", t0), "second device");
        assert!(p.subscribed(3, "bob", "general", t0));
        assert_eq!(p.due(), Some(t0 + WINDOW));
        assert!(p.take_due(t0).is_empty(), "not yet");
        let due = p.take_due(t0 + WINDOW);
        assert_eq!(due.len(), 1);
        let names: Vec<_> = due[0].1.iter().map(|(c, u)| (*c, &**u)).collect();
        assert_eq!(names, [(Change::Online, "ana"), (Change::Online, "bob")]);
        // bob drops and comes back inside one window: nothing to say.
        let t1 = t0 + WINDOW * 2;
        p.offline(3, t1);
        assert!(p.subscribed(4, "bob", "general", t1));
        assert!(p.take_due(t1 + WINDOW).is_empty());
        // One of ana's two devices goes: still online. Both: offline.
        p.offline(1, t1);
        assert!(p.is_online("general", "ana"));
        p.unsubscribed(2, "general", t1);
        assert!(!p.is_online("general", "ana"));
        let due = p.take_due(t1 + WINDOW);
        let names: Vec<_> = due[0].1.iter().map(|(c, u)| (*c, &**u)).collect();
        assert_eq!(names, [(Change::Offline, "ana")]);
    }
}

//! Which of a bridge's upstream addresses (the nodes of a cluster) it tries next, and when
//! a round of attempts is over so that it backs off. Pure: the broker says what happened
//! to the attempt or the link, and reads which address is next.
//!
//! A round tries the addresses in order from its first one; an address that cannot be
//! reached hands over to the next at once, and only when every address of the round has
//! failed does the bridge back off (`backoff`) and start a new round from the same first
//! address. A link that was up and is lost starts the next round (after the backoff) at
//! the primary, the first address; with `round_robin`, at the address after the one lost.
//! Without `round_robin`, a bridge up on another address checks now and then whether the
//! primary is back, and moves to it.

#[derive(Debug, Clone)]
pub struct Rounds {
    count: usize,
    round_robin: bool,
    /// The address in use, or being tried.
    current: usize,
    /// The address this round started with: when the next one would be it again, every
    /// address has failed.
    round_start: usize,
}

impl Rounds {
    /// `count` addresses (at least one), starting with the first.
    pub fn new(count: usize, round_robin: bool) -> Rounds {
        Rounds {
            count: count.max(1),
            round_robin,
            current: 0,
            round_start: 0,
        }
    }

    /// The index of the address in use, or being tried.
    pub fn current(&self) -> usize {
        self.current
    }

    /// An attempt on the current address failed: true when the round has another address
    /// to try now (now current); false when the round is over (the bridge backs off, and
    /// the next round starts where this one did).
    pub fn attempt_failed(&mut self) -> bool {
        let next = (self.current + 1) % self.count;
        if next == self.round_start {
            self.current = self.round_start;
            return false;
        }
        self.current = next;
        true
    }

    /// The link that was up on the current address is lost: the next round starts at the
    /// primary, or with `round_robin` at the address after the lost one.
    pub fn link_lost(&mut self) {
        self.round_start = if self.round_robin {
            (self.current + 1) % self.count
        } else {
            0
        };
        self.current = self.round_start;
    }

    /// The bridge left its link on purpose (idle, or for the primary): without
    /// `round_robin` the next link is made with the primary first; with it, the next round
    /// starts where the link was.
    pub fn left(&mut self) {
        if !self.round_robin {
            self.current = 0;
        }
        self.round_start = self.current;
    }

    /// Whether a link up on the current address should watch for the primary's return.
    pub fn watches_primary(&self) -> bool {
        self.current != 0 && !self.round_robin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The addresses tried after each failed attempt, and whether each one is tried at
    /// once (true) or after a backoff (false).
    fn tries(rounds: &mut Rounds, failures: usize) -> Vec<(usize, bool)> {
        (0..failures)
            .map(|_| {
                let now = rounds.attempt_failed();
                (rounds.current(), now)
            })
            .collect()
    }

    #[test]
    fn a_round_tries_every_address_then_backs_off_and_starts_again_at_the_first() {
        let mut r = Rounds::new(3, false);
        assert_eq!(r.current(), 0);
        let want = [
            (1, true),
            (2, true),
            (0, false),
            (1, true),
            (2, true),
            (0, false),
        ];
        assert_eq!(tries(&mut r, 6), want);
    }

    #[test]
    fn one_address_backs_off_after_every_failure() {
        let mut r = Rounds::new(1, false);
        assert_eq!(tries(&mut r, 3), [(0, false), (0, false), (0, false)]);
        r.link_lost();
        assert_eq!(r.current(), 0);
        assert!(!r.watches_primary());
    }

    #[test]
    fn a_link_lost_goes_back_to_the_primary_unless_round_robin() {
        let mut r = Rounds::new(3, false);
        assert!(r.attempt_failed());
        assert_eq!(r.current(), 1);
        assert!(r.watches_primary(), "up on the second address");
        r.link_lost();
        assert_eq!(r.current(), 0);
        assert_eq!(tries(&mut r, 3), [(1, true), (2, true), (0, false)]);

        let mut r = Rounds::new(3, true);
        assert!(r.attempt_failed());
        assert!(!r.watches_primary(), "round robin stays where it works");
        r.link_lost();
        assert_eq!(
            r.current(),
            2,
            "the next round starts after the lost address"
        );
        assert_eq!(tries(&mut r, 3), [(0, true), (1, true), (2, false)]);
    }

    #[test]
    fn leaving_on_purpose_starts_the_next_link_at_the_primary_unless_round_robin() {
        let mut r = Rounds::new(2, false);
        r.attempt_failed();
        r.left();
        assert_eq!(r.current(), 0);
        assert_eq!(tries(&mut r, 2), [(1, true), (0, false)]);

        let mut r = Rounds::new(2, true);
        r.attempt_failed();
        r.left();
        assert_eq!(r.current(), 1);
        assert_eq!(tries(&mut r, 2), [(0, true), (1, false)]);
    }
}

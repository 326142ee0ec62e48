//! The web console's password reset on the loop: the reset throttle (per address and per
//! account; the chat service's, shared with `reset` over MQTT, when chat is on, else the
//! loop's own) is checked here, the answer
//! and the new password's bcrypt run on an auth worker with the chat's own reset, and the
//! outcome comes back through the inbox, where the user's cached login is forgotten.

use std::net::IpAddr;
use std::sync::mpsc;
use std::time::Instant;

use super::console::{ConsoleAnswer, ConsoleAsk, ConsoleRequest};
use super::inbox::Inbound;
use super::Broker;
use crate::accounts::{self, AccountError, Bcrypt};
use crate::auth::throttle::Attempt;

impl Broker {
    pub(super) fn start_reset(
        &mut self,
        name: String,
        answer: String,
        password: String,
        addr: IpAddr,
        reply: mpsc::Sender<ConsoleAnswer>,
        now: Instant,
    ) {
        let begun = match self.chat.as_mut() {
            Some(chat) => chat.begin_web_reset(addr, &name, now),
            None => self.access.resets.begin(addr, &name, now),
        };
        let attempt = match begun {
            Ok(attempt) => attempt,
            Err(wait) => {
                log::info!("web console: password reset for {name} from {addr} held back {wait:?}");
                let _ = reply.send(ConsoleAnswer::TooManyAttempts(wait.as_secs().max(1)));
                return;
            }
        };
        let cost = self.config.accounts.bcrypt_cost;
        self.access.worker.run(Box::new(move |store, dummy| {
            let hasher = Bcrypt(cost);
            let outcome = match accounts::reset(store, &hasher, &name, &answer, &password, dummy) {
                Ok(()) => ConsoleAnswer::Done,
                Err(AccountError::Rule(e)) => ConsoleAnswer::Invalid(e.to_string()),
                Err(AccountError::Unavailable) => {
                    ConsoleAnswer::Failed("the accounts cannot be read; see the log".into())
                }
                Err(e) => ConsoleAnswer::NotAuthorized(e.to_string()),
            };
            Inbound::Console(ConsoleRequest {
                ask: ConsoleAsk::ResetDone {
                    name,
                    outcome,
                    attempt,
                },
                reply,
            })
        }));
    }

    pub(super) fn reset_done(
        &mut self,
        name: &str,
        outcome: ConsoleAnswer,
        attempt: Attempt,
        now: Instant,
    ) -> ConsoleAnswer {
        let succeeded = outcome == ConsoleAnswer::Done;
        match self.chat.as_mut() {
            Some(chat) => chat.finish_web_reset(attempt, succeeded, now),
            None => self.access.resets.finish(attempt, succeeded, now),
        }
        if succeeded {
            log::info!("web console: password of {name} reset with the security question");
            self.access.credentials.forget(name);
        }
        outcome
    }
}

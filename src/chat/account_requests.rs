//! Account requests on the loop: the cheap checks first (rules, question length, the
//! reset-attempt windows), then the bcrypt work handed to an auth worker, and the reply
//! once it is done. The work itself is in `accounts`.

use std::net::IpAddr;
use std::time::Instant;

use super::accounts::{self, AccountDone, AccountError, AccountOp};
use super::codec::{Op, Reply};
use super::reply::ReplyTo;
use super::{ChatError, ChatService};
use crate::auth::rules;
use crate::service::{Effect, Request};

/// An auth worker's result for a request's account work.
#[derive(Debug)]
pub struct AccountReply {
    pub ticket: u64,
    pub result: Result<AccountDone, AccountError>,
}

/// A request waiting for its account work.
pub(super) struct Pending {
    to: ReplyTo,
    /// The user it is about (named in the reply; its cached login goes after a reset).
    name: String,
}

impl ChatService {
    /// register, setq, question or reset: checked here, done on a worker.
    pub(super) fn account_request(
        &mut self,
        req: &Request<'_>,
        op: Op<'_>,
        to: ReplyTo,
        out: &mut Vec<Effect>,
    ) -> Result<(), ChatError> {
        let (name, op) = match op {
            Op::Register { name, password } => {
                rules::check_username(name).map_err(ChatError::Rule)?;
                rules::check_password(password).map_err(ChatError::Rule)?;
                let op = AccountOp::Register {
                    name: name.to_owned(),
                    password: password.to_owned(),
                };
                (name, op)
            }
            Op::SetQuestion { question, answer } => {
                let user = req.from.username.ok_or(ChatError::NotLoggedIn)?;
                accounts::check_question(question, answer)?;
                let op = AccountOp::SetQuestion {
                    user: user.to_owned(),
                    question: question.to_owned(),
                    answer: answer.to_owned(),
                };
                (user, op)
            }
            Op::Question { name } => {
                let op = AccountOp::Question {
                    name: name.to_owned(),
                };
                (name, op)
            }
            Op::Reset {
                name,
                password,
                answer,
            } => {
                if !self.allow_reset(name, req.from.addr, req.now) {
                    return Err(ChatError::RateLimited);
                }
                rules::check_password(password).map_err(ChatError::Rule)?;
                let op = AccountOp::Reset {
                    name: name.to_owned(),
                    password: password.to_owned(),
                    answer: answer.to_owned(),
                };
                (name, op)
            }
            Op::Rooms | Op::History { .. } | Op::Like { .. } => {
                return Err(ChatError::BadRequest("not an account request"))
            }
        };
        self.defer(to, name, op, out);
        Ok(())
    }

    /// Counts a password reset attempt for `name` from `addr` (over MQTT or from the web
    /// console's reset page): false when either window is full.
    pub fn allow_reset(&mut self, name: &str, addr: IpAddr, now: Instant) -> bool {
        // Both windows count the attempt, whichever refuses.
        let by_user = self.resets_by_user.allow(name.to_owned(), now);
        let by_address = self.resets_by_address.allow(addr, now);
        if !(by_user && by_address) {
            log::info!("chat: password reset for {name} from {addr} rate-limited");
        }
        by_user && by_address
    }

    /// Sends account work to a worker, remembering where its reply goes.
    fn defer(&mut self, to: ReplyTo, name: &str, op: AccountOp, out: &mut Vec<Effect>) {
        self.last_ticket += 1;
        let ticket = self.last_ticket;
        self.pending.insert(
            ticket,
            Pending {
                to,
                name: name.to_owned(),
            },
        );
        out.push(Effect::Account { ticket, op });
    }

    /// The result of account work: the reply, and after a password reset the end of the
    /// user's cached login.
    pub fn account_done(&mut self, reply: AccountReply) -> Vec<Effect> {
        let Some(Pending { to, name }) = self.pending.remove(&reply.ticket) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let payload = match reply.result {
            Ok(AccountDone::Registered) => {
                log::info!("chat: user {name} registered");
                Reply::ok(&format!("registered {name}"))
            }
            Ok(AccountDone::QuestionSet) => Reply::ok("question set"),
            Ok(AccountDone::Question(question)) => Reply::ok("question").line(&question),
            Ok(AccountDone::PasswordReset) => {
                log::info!("chat: password of {name} reset");
                out.push(Effect::ForgetCredentials(name));
                Reply::ok("password changed")
            }
            Err(e) => {
                let e = ChatError::from(e);
                log::debug!("chat: account request about {name}: {}: {e}", e.code());
                Reply::error(e)
            }
        };
        out.push(to.publish(payload.into_bytes()));
        out
    }
}

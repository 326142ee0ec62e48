//! Account requests on the loop: the cheap checks first (rules, question length), the
//! limits (registrations per address; reset answers through the login throttle, per
//! address and per account-and-address), then the bcrypt work handed to an auth worker,
//! and the reply once it is done. The work itself is `crate::accounts`.

use std::time::Instant;

use super::codec::{Op, Reply};
use super::reply::ReplyTo;
use super::{ChatError, ChatService};
use crate::accounts::{self, rules, AccountDone, AccountError, AccountOp};
use crate::auth::attempts::Attempts;
use crate::auth::throttle::{AddressKey, Attempt};
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
    /// A reset's place in the throttle, finished with the answer's verdict.
    attempt: Option<Attempt>,
}

/// Counts one `what` from the requester's address in `window`; refused (and logged) when
/// the address has used up its share.
fn per_address(
    window: &mut Attempts<AddressKey>,
    req: &Request<'_>,
    what: &str,
) -> Result<(), ChatError> {
    if window.allow(AddressKey::from(req.from.addr), req.now) {
        return Ok(());
    }
    log::info!("chat: {what} from {} refused: too many", req.from.addr);
    Err(ChatError::RateLimited)
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
        let mut attempt = None;
        let (name, op) = match op {
            Op::Register { name, password } => {
                rules::check_username(name).map_err(AccountError::Rule)?;
                rules::check_password(password).map_err(AccountError::Rule)?;
                per_address(&mut self.registrations, req, "registrations")?;
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
                per_address(&mut self.questions, req, "question lookups")?;
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
                rules::check_password(password).map_err(AccountError::Rule)?;
                let taken = self.resets.begin(req.from.addr, name, req.now);
                attempt = Some(taken.map_err(|wait| {
                    log::info!(
                        "chat: password reset for {name} from {} held back {wait:?}",
                        req.from.addr
                    );
                    ChatError::RateLimited
                })?);
                let op = AccountOp::Reset {
                    name: name.to_owned(),
                    password: password.to_owned(),
                    answer: answer.to_owned(),
                };
                (name, op)
            }
            Op::Rooms
            | Op::History { .. }
            | Op::Like { .. }
            | Op::Members { .. }
            | Op::Leave { .. }
            | Op::Block { .. }
            | Op::Blocks
            | Op::Read { .. } => return Err(ChatError::BadRequest("not an account request")),
        };
        let pending = Pending {
            to,
            name: name.to_owned(),
            attempt,
        };
        self.defer(pending, op, out);
        Ok(())
    }

    /// Takes a slot in the reset throttle for the web console's reset page, the same one
    /// `reset` over MQTT takes, or says how long to wait.
    pub fn begin_web_reset(
        &mut self,
        addr: std::net::IpAddr,
        name: &str,
        now: Instant,
    ) -> Result<Attempt, std::time::Duration> {
        self.resets.begin(addr, name, now)
    }

    /// The web reset behind `attempt` is done (see [`Self::begin_web_reset`]).
    pub fn finish_web_reset(&mut self, attempt: Attempt, succeeded: bool, now: Instant) {
        self.resets.finish(attempt, succeeded, now);
    }

    /// Sends account work to a worker, remembering where its reply goes.
    fn defer(&mut self, pending: Pending, op: AccountOp, out: &mut Vec<Effect>) {
        self.last_ticket += 1;
        let ticket = self.last_ticket;
        self.pending.insert(ticket, pending);
        out.push(Effect::Account { ticket, op });
    }

    /// The result of account work: the reply, and after a password reset the end of the
    /// user's cached login.
    pub fn account_done(&mut self, reply: AccountReply, now: Instant) -> Vec<Effect> {
        let Some(Pending { to, name, attempt }) = self.pending.remove(&reply.ticket) else {
            return Vec::new();
        };
        if let Some(attempt) = attempt {
            let succeeded = matches!(reply.result, Ok(AccountDone::PasswordReset));
            self.resets.finish(attempt, succeeded, now);
        }
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

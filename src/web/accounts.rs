//! What the register, login and account forms (and their API twins) do: the account work
//! of `crate::accounts` and the login checks, with bcrypt on the calling web thread (one
//! at a time, [`Context`]'s [`Hasher`]), never on the loop. Each refusal has a code, an
//! HTTP status and a sentence for the page.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::server::{Context, Reply};
use crate::accounts::rules::{self, RuleError};
use crate::accounts::{self, Hasher, QUESTION_MAX};
use crate::auth::password::MAX_PASSWORD_BYTES;
use crate::auth::throttle::AddressKey;
use crate::store::{Store, StoreError, UserRecord};

#[derive(Debug)]
pub enum AccountError {
    Rule(RuleError),
    NameTaken,
    WrongCredentials,
    /// Too many failed logins from this address or against this account; try again after
    /// this long.
    Throttled(Duration),
    /// Too many registrations from this address in the last hour.
    TooManyRegistrations,
    /// The two new passwords differ.
    Mismatch,
    QuestionInvalid,
    AnswerInvalid,
    Store(StoreError),
    /// The accounts' store or bcrypt failed (logged where it happened).
    Unavailable,
}

impl AccountError {
    pub fn status(&self) -> u16 {
        match self {
            AccountError::Rule(_)
            | AccountError::Mismatch
            | AccountError::QuestionInvalid
            | AccountError::AnswerInvalid => 400,
            AccountError::WrongCredentials => 401,
            AccountError::NameTaken => 409,
            AccountError::Throttled(_) | AccountError::TooManyRegistrations => 429,
            AccountError::Store(_) | AccountError::Unavailable => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AccountError::Rule(e) => e.code(),
            AccountError::NameTaken => "name_taken",
            AccountError::WrongCredentials => "wrong_credentials",
            AccountError::Throttled(_) | AccountError::TooManyRegistrations => "too_many_attempts",
            AccountError::Mismatch => "passwords_differ",
            AccountError::QuestionInvalid => "question_invalid",
            AccountError::AnswerInvalid => "answer_invalid",
            AccountError::Store(_) | AccountError::Unavailable => "internal",
        }
    }
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountError::Rule(e) => write!(f, "{e}"),
            AccountError::NameTaken => f.write_str("that user name is taken"),
            AccountError::WrongCredentials => f.write_str("wrong user name or password"),
            AccountError::Throttled(wait) => write!(
                f,
                "too many failed logins; try again in {} s",
                retry_seconds(*wait)
            ),
            AccountError::TooManyRegistrations => {
                f.write_str("too many registrations from your address; try again in an hour")
            }
            AccountError::Mismatch => f.write_str("the two new passwords differ"),
            AccountError::QuestionInvalid => write!(
                f,
                "the question must have 1 to {QUESTION_MAX} characters and no control characters"
            ),
            AccountError::AnswerInvalid => {
                write!(f, "the answer must have 1 to {MAX_PASSWORD_BYTES} bytes")
            }
            AccountError::Store(_) | AccountError::Unavailable => {
                f.write_str("internal error; see the broker log")
            }
        }
    }
}

/// Whole seconds to wait, rounded up (a wait of 0.2 s is "1 s", never "0 s").
fn retry_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl AccountError {
    /// `reply` with a `Retry-After` header when the refusal says how long to wait.
    pub fn with_retry_after(&self, reply: Reply) -> Reply {
        match self {
            AccountError::Throttled(wait) => {
                reply.with("Retry-After", retry_seconds(*wait).to_string())
            }
            AccountError::TooManyRegistrations => reply.with("Retry-After", "3600".to_owned()),
            _ => reply,
        }
    }
}

impl std::error::Error for AccountError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AccountError::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        log::warn!("web console: {e}");
        AccountError::Store(e)
    }
}

impl From<accounts::AccountError> for AccountError {
    fn from(e: accounts::AccountError) -> Self {
        match e {
            accounts::AccountError::Rule(rule) => AccountError::Rule(rule),
            accounts::AccountError::NameTaken => AccountError::NameTaken,
            accounts::AccountError::QuestionInvalid => AccountError::QuestionInvalid,
            accounts::AccountError::AnswerInvalid => AccountError::AnswerInvalid,
            accounts::AccountError::NoQuestion
            | accounts::AccountError::ResetFailed
            | accounts::AccountError::UnknownUser => AccountError::WrongCredentials,
            accounts::AccountError::Unavailable => AccountError::Unavailable,
        }
    }
}

/// Creates a (non-admin) account for someone registering from `peer` and returns it: at
/// most `registrations_per_hour` tries per address (a try breaking a rule is answered
/// first and not counted), then [`create`].
pub fn register(
    context: &Context,
    store: &Store,
    peer: IpAddr,
    name: &str,
    password: &str,
    repeat: &str,
) -> Result<UserRecord, AccountError> {
    check_new(name, password, repeat)?;
    let allowed = context
        .limiter
        .lock()
        .expect("limiter")
        .registrations
        .allow(AddressKey::from(peer), Instant::now());
    if !allowed {
        log::info!("web console: registration of {name:?} from {peer} refused: too many");
        return Err(AccountError::TooManyRegistrations);
    }
    let user = create(context, store, name, password, repeat)?;
    log::info!("web console: user {} registered from {peer}", user.name);
    Ok(user)
}

/// The account rules and the repeated password, checked before any work.
fn check_new(name: &str, password: &str, repeat: &str) -> Result<(), AccountError> {
    rules::check_username(name).map_err(AccountError::Rule)?;
    rules::check_password(password).map_err(AccountError::Rule)?;
    if password != repeat {
        return Err(AccountError::Mismatch);
    }
    Ok(())
}

/// Creates a (non-admin) account with [`accounts::register`] and returns it.
pub fn create(
    context: &Context,
    store: &Store,
    name: &str,
    password: &str,
    repeat: &str,
) -> Result<UserRecord, AccountError> {
    check_new(name, password, repeat)?;
    accounts::register(store, context, name, password)?;
    store
        .find_login(name)?
        .ok_or(AccountError::WrongCredentials)
}

/// Checks a login. The try takes its place in the login throttle (per address and per
/// account) before bcrypt runs, so parallel tries count.
pub fn login(
    context: &Context,
    store: &Store,
    peer: IpAddr,
    name: &str,
    password: &str,
) -> Result<UserRecord, AccountError> {
    match verified(context, store, peer, name, password) {
        Ok(user) => {
            log::info!("web console: {} logged in from {peer}", user.name);
            Ok(user)
        }
        Err(e) => {
            log::info!("web console: failed login for {name:?} from {peer}: {e}");
            Err(e)
        }
    }
}

/// The account `name` finds (any case) when `password` is its password, with the try
/// counted by the login throttle: every check of a password goes through here.
fn verified(
    context: &Context,
    store: &Store,
    peer: IpAddr,
    name: &str,
    password: &str,
) -> Result<UserRecord, AccountError> {
    let attempt = context
        .limiter
        .lock()
        .expect("limiter")
        .logins
        .begin(peer, name, Instant::now())
        .map_err(AccountError::Throttled)?;
    let user = store.find_login(name);
    let ok = match &user {
        Ok(Some(user)) => context.verify(password.as_bytes(), &user.password_hash),
        Ok(None) => {
            let dummy = context
                .dummy_hash
                .get_or_init(|| context.hash("not a real password").unwrap_or_default());
            std::hint::black_box(context.verify(password.as_bytes(), dummy));
            false
        }
        Err(_) => false,
    };
    context
        .limiter
        .lock()
        .expect("limiter")
        .logins
        .finish(attempt, ok, Instant::now());
    match user? {
        Some(user) if ok => Ok(user),
        _ => Err(AccountError::WrongCredentials),
    }
}

/// Changes `name`'s password after checking the current one (a check the login throttle
/// counts, so a borrowed session cannot guess it).
pub fn change_password(
    context: &Context,
    store: &Store,
    peer: IpAddr,
    name: &str,
    current: &str,
    new: &str,
    repeat: &str,
) -> Result<(), AccountError> {
    let user = verified(context, store, peer, name, current)?;
    rules::check_password(new).map_err(AccountError::Rule)?;
    if new != repeat {
        return Err(AccountError::Mismatch);
    }
    accounts::set_password(store, context, &user.name, new)?;
    log::info!("web console: {} changed their password", user.name);
    Ok(())
}

/// Sets `name`'s security question with [`accounts::set_question`].
pub fn set_question(
    context: &Context,
    store: &Store,
    name: &str,
    question: &str,
    answer: &str,
) -> Result<(), AccountError> {
    accounts::set_question(store, context, name, question, answer)?;
    log::info!("web console: {name} set a security question");
    Ok(())
}

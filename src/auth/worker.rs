//! The auth worker: bcrypt runs here, never on the loop. The loop sends a job — a CONNECT
//! to check, or other slow work such as the chat service's account requests — the worker
//! runs it on its own database connection and answers through the loop's inbox (which
//! wakes the loop).

use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use super::password::{hash_password, verify_password};
use crate::broker::{ConnKey, Inbound, InboxSender};
use crate::config::SyncMode;
use crate::store::{AclRule, HelperStore, Store};

/// A CONNECT whose user name and password must be checked.
pub struct AuthRequest {
    /// The connection's key and serial, to find it again (or learn it is gone).
    pub token: ConnKey,
    pub serial: u64,
    pub username: String,
    pub password: Vec<u8>,
    pub addr: IpAddr,
}

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthOutcome {
    Accepted,
    /// Wrong password for an account that exists.
    Rejected,
    /// No account has this user name (found after the same work as a wrong password):
    /// the loop may connect the client as anonymous where anonymous clients are allowed.
    UnknownUser,
    /// The database could not be read.
    Unavailable,
}

pub struct AuthReply {
    pub token: ConnKey,
    pub serial: u64,
    pub outcome: AuthOutcome,
    /// The account's stored name when accepted: a CONNECT may name it in another case
    /// (`Ana` for `ana`), and the session must carry the account's own name.
    pub account: Option<String>,
    /// Every ACL rule as of this check, so rule changes reach the loop without a restart.
    pub rules: Option<Arc<Vec<AclRule>>>,
}

/// Slow work for a worker: given the worker's store and a hash of the configured cost
/// (to check unknown users against), it returns what to tell the loop.
pub type Task = Box<dyn FnOnce(&mut Store, &str) -> Inbound + Send>;

enum Job {
    Connect(AuthRequest),
    Run(Task),
}

/// The loop's handle on the worker threads.
pub struct AuthWorker {
    requests: Sender<Job>,
}

impl AuthWorker {
    /// Starts `threads` workers, each with its own connection to the database at `db`.
    pub fn spawn(
        db: &Path,
        sync: SyncMode,
        cost: u32,
        threads: usize,
        inbox: InboxSender,
    ) -> io::Result<AuthWorker> {
        let (requests, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads.max(1) {
            let store = HelperStore::open(db, sync).map_err(io::Error::other)?;
            let jobs = jobs.clone();
            let inbox = inbox.clone();
            thread::Builder::new()
                .name(format!("auth-{i}"))
                .spawn(move || work(store, cost, &jobs, &inbox))?;
        }
        Ok(AuthWorker { requests })
    }

    pub fn submit(&self, request: AuthRequest) {
        // The workers live as long as the process; a send cannot fail while it runs.
        let _ = self.requests.send(Job::Connect(request));
    }

    /// Runs `task` on the next free worker.
    pub fn run(&self, task: Task) {
        let _ = self.requests.send(Job::Run(task));
    }
}

fn work(store: HelperStore, cost: u32, jobs: &Mutex<Receiver<Job>>, inbox: &InboxSender) {
    // Unknown users are checked against this hash so they cost what a wrong password costs.
    let dummy = hash_password("outpost-dummy-password", cost).unwrap_or_default();
    loop {
        let job = match jobs.lock() {
            Ok(jobs) => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let request = match job {
            Job::Connect(request) => request,
            Job::Run(task) => {
                // Stopping: the loop that would take the answer is gone.
                let Ok(answer) = store.with(|store| task(store, &dummy)) else {
                    return;
                };
                if inbox.send(answer).is_err() {
                    return;
                }
                continue;
            }
        };
        let Ok(((outcome, account), rules)) = store.with(|store| {
            let verdict = check(store, &request, &dummy);
            (verdict, store.list_acl_rules().ok().map(Arc::new))
        }) else {
            return;
        };
        let reply = AuthReply {
            token: request.token,
            serial: request.serial,
            outcome,
            account,
            rules,
        };
        if inbox.send(Inbound::Auth(reply)).is_err() {
            return;
        }
    }
}

/// The verdict, and the account's stored name when accepted.
fn check(store: &Store, request: &AuthRequest, dummy: &str) -> (AuthOutcome, Option<String>) {
    match store.find_login(&request.username) {
        Ok(Some(user)) if verify_password(&request.password, &user.password_hash) => {
            (AuthOutcome::Accepted, Some(user.name))
        }
        Ok(Some(_)) => (AuthOutcome::Rejected, None),
        Ok(None) => {
            std::hint::black_box(verify_password(&request.password, dummy));
            (AuthOutcome::UnknownUser, None)
        }
        Err(e) => {
            log::error!("cannot check user {}: {e}", request.username);
            (AuthOutcome::Unavailable, None)
        }
    }
}

//! The auth workers: the threads where bcrypt runs, never on the loop. The loop hands them
//! tasks — a CONNECT's password to check (`login::check_login`), the chat service's account
//! work, the console's password reset — and each runs on the worker's own database
//! connection. Its answer goes to whatever `answer` the workers were started with (the
//! loop's inbox, which wakes the loop): the workers know nothing of the loop's types, so
//! `auth` imports nothing from `broker`.

use std::io;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use super::password::hash_password;
use crate::config::SyncMode;
use crate::store::{HelperStore, Store};

/// Slow work for a worker: given the worker's store and a hash of the configured cost
/// (to check unknown users against), it returns the message `M` for the loop.
pub type Task<M> = Box<dyn FnOnce(&mut Store, &str) -> M + Send>;

/// The loop's handle on the worker threads, whose tasks answer with `M`.
pub struct AuthWorker<M> {
    tasks: Sender<Task<M>>,
}

impl<M: Send + 'static> AuthWorker<M> {
    /// Starts `threads` workers, each with its own connection to the database at `db`.
    /// Each task's result goes to `answer`, which says whether it was delivered; a worker
    /// stops when it was not (the loop that would take it is gone).
    pub fn spawn<A>(
        db: &Path,
        sync: SyncMode,
        cost: u32,
        threads: usize,
        answer: A,
    ) -> io::Result<AuthWorker<M>>
    where
        A: Fn(M) -> bool + Clone + Send + 'static,
    {
        let (tasks, jobs) = mpsc::channel::<Task<M>>();
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads.max(1) {
            let store = HelperStore::open(db, sync).map_err(io::Error::other)?;
            let jobs = jobs.clone();
            let answer = answer.clone();
            thread::Builder::new()
                .name(format!("auth-{i}"))
                .spawn(move || work(store, cost, &jobs, answer))?;
        }
        Ok(AuthWorker { tasks })
    }

    /// Runs `task` on the next free worker.
    pub fn run(&self, task: Task<M>) {
        // The workers live as long as the process; a send cannot fail while it runs.
        let _ = self.tasks.send(task);
    }
}

fn work<M>(
    store: HelperStore,
    cost: u32,
    jobs: &Mutex<Receiver<Task<M>>>,
    answer: impl Fn(M) -> bool,
) {
    // Unknown users are checked against this hash so they cost what a wrong password costs.
    let dummy = hash_password("outpost-dummy-password", cost).unwrap_or_default();
    loop {
        let task = match jobs.lock() {
            Ok(jobs) => match jobs.recv() {
                Ok(task) => task,
                Err(_) => return,
            },
            Err(_) => return,
        };
        // Stopping: the loop that would take the answer is gone.
        let Ok(message) = store.with(|store| task(store, &dummy)) else {
            return;
        };
        if !answer(message) {
            return;
        }
    }
}

//! The console's worker pool: threads that run the route handlers (bcrypt, SQLite, a
//! question to the broker loop) on complete requests only, each with its own database
//! connection, and hand the encoded answer back to the poll loop through a channel and its
//! waker. No socket ever reaches a worker, so no slow client can occupy one.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use mio::Waker;

use super::http::Request;
use super::server::{self, Context};
use crate::store::{HelperStore, SyncMode};

/// Worker threads: password checks take one at a time (see [`Context::hash`]), so more
/// would only wait; the others answer pages and the admin page's polling meanwhile.
pub const THREADS: usize = 4;

/// A complete request for a worker.
pub struct Job {
    pub key: usize,
    pub serial: u64,
    pub request: Request,
    pub peer: IpAddr,
    /// The request came over HTTPS (cookies get `Secure`).
    pub https: bool,
}

/// A worker's answer, encoded, for connection `key`.
pub struct Done {
    pub key: usize,
    pub serial: u64,
    pub bytes: Vec<u8>,
    /// The connection closes after this answer.
    pub close: bool,
}

/// Where the poll loop sends jobs.
pub struct Pool {
    jobs: Sender<Job>,
}

impl Pool {
    /// Starts the workers; their answers go to `done`, and `waker` wakes the poll loop.
    pub fn spawn(
        context: Arc<Context>,
        db: PathBuf,
        sync: SyncMode,
        done: Sender<Done>,
        waker: Arc<Waker>,
    ) -> std::io::Result<Pool> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..THREADS {
            let (context, db, queue, done, waker) = (
                context.clone(),
                db.clone(),
                queue.clone(),
                done.clone(),
                waker.clone(),
            );
            std::thread::Builder::new()
                .name(format!("web-{n}"))
                .spawn(move || work(&context, &db, sync, &queue, &done, &waker))?;
        }
        Ok(Pool { jobs })
    }

    pub fn send(&self, job: Job) {
        // The workers live as long as the process.
        let _ = self.jobs.send(job);
    }
}

fn work(
    context: &Context,
    db: &Path,
    sync: SyncMode,
    queue: &Mutex<Receiver<Job>>,
    done: &Sender<Done>,
    waker: &Waker,
) {
    // Opened on the first request: an unused console costs no SQLite memory.
    let store = HelperStore::lazy(db, sync);
    loop {
        let job = match queue.lock().expect("job queue").recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let (bytes, close) = server::serve(context, &store, job.request, job.peer, job.https);
        let answer = Done {
            key: job.key,
            serial: job.serial,
            bytes,
            close,
        };
        if done.send(answer).is_err() {
            return;
        }
        let _ = waker.wake();
    }
}

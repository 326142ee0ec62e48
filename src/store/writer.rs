//! The store writer: a thread with its own connection that commits the batches the
//! event loop hands it, so a slow flush (an SD card's fsync) never stalls the loop.
//!
//! Batches are numbered by the loop, increasing. The writer commits them in order; when
//! several wait it commits them in one transaction, one fsync. After each commit it
//! records "durable up to batch N" in [`Progress`] (with the batches that failed) and
//! calls the loop's wake-up; the loop then releases the acknowledgements that waited.
//! Dropping or [`Writer::close`] lets it finish every batch handed to it and close its
//! connection: flush, then close.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Store, StoreError, SyncMode, Write};

/// At `sync = "normal"`, the longest a commit stays unflushed: the bound on what a power
/// cut can take.
const NORMAL_FLUSH_EVERY: Duration = Duration::from_secs(1);

/// How far the writer got, shared with the loop.
#[derive(Default)]
pub struct Progress {
    /// The last batch committed (or failed): everything up to it is settled.
    settled: AtomicU64,
    /// Batches that failed and were rolled back (the first of those committed together),
    /// with the error, not yet taken.
    failed: Mutex<Vec<(u64, String)>>,
    /// Signalled after each commit, for [`Writer::wait_for`].
    lock: Mutex<()>,
    changed: Condvar,
}

impl Progress {
    /// Every batch up to this one is committed or failed.
    pub fn settled(&self) -> u64 {
        self.settled.load(Ordering::Acquire)
    }

    /// The batches that failed since the last call, with the error.
    pub fn take_failures(&self) -> Vec<(u64, String)> {
        std::mem::take(&mut *self.failed.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The loop's handle on the writer thread.
pub struct Writer {
    batches: Option<Sender<(u64, Vec<Write>)>>,
    thread: Option<JoinHandle<()>>,
    progress: Arc<Progress>,
}

impl Writer {
    /// Opens the writer's connection to `path` and starts its thread; `wake` is called
    /// after each commit (the loop's inbox and waker).
    pub fn spawn(
        path: &Path,
        sync: SyncMode,
        wake: Box<dyn Fn() + Send>,
    ) -> Result<Writer, StoreError> {
        let store = Store::open(path, sync)?;
        let (tx, rx) = mpsc::channel();
        let progress = Arc::new(Progress::default());
        let shared = progress.clone();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(store, sync, rx, &shared, wake))
            .map_err(|e| StoreError::Thread(e.to_string()))?;
        Ok(Writer {
            batches: Some(tx),
            thread: Some(thread),
            progress,
        })
    }

    /// Hands batch `id` to the writer. Ids must increase.
    pub fn send(&self, id: u64, writes: Vec<Write>) {
        if let Some(tx) = &self.batches {
            if tx.send((id, writes)).is_err() {
                log::error!("store writer has stopped; batch {id} is not written");
            }
        }
    }

    /// What the writer has settled so far.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Blocks until batch `id` is settled (committed or failed).
    pub fn wait_for(&self, id: u64) {
        let p = &self.progress;
        let mut guard = p.lock.lock().unwrap_or_else(|e| e.into_inner());
        while p.settled() < id && self.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            // Timed, so a writer that died without a word cannot hang the loop.
            guard = p
                .changed
                .wait_timeout(guard, std::time::Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Lets the writer commit what it was handed, then close its connection.
    pub fn close(&mut self) {
        self.batches = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("store writer panicked");
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

/// The writer thread: commits batches until the loop hangs up, then closes the store.
fn run(
    mut store: Store,
    sync: SyncMode,
    batches: Receiver<(u64, Vec<Write>)>,
    progress: &Progress,
    wake: Box<dyn Fn() + Send>,
) {
    // At `normal`, since when commits have gone unflushed.
    let mut unflushed: Option<Instant> = None;
    loop {
        let (first, mut writes) = match unflushed {
            None => match batches.recv() {
                Ok(batch) => batch,
                Err(_) => break,
            },
            Some(since) => {
                let left = (since + NORMAL_FLUSH_EVERY).saturating_duration_since(Instant::now());
                match batches.recv_timeout(left) {
                    Ok(batch) => batch,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        // Idle with unflushed commits: flush them now.
                        if let Err(e) = store.checkpoint() {
                            log::warn!("store flush (sync = \"normal\") failed: {e}");
                        }
                        unflushed = None;
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        };
        let mut last = first;
        // Whatever else waits goes in the same transaction: one flush for all of it.
        while let Ok((id, more)) = batches.try_recv() {
            last = id;
            writes.extend(more);
        }
        // At `normal`, the commit a second after the first unflushed one is a full one.
        let flush_now = sync == SyncMode::Normal
            && unflushed.is_some_and(|since| since.elapsed() >= NORMAL_FLUSH_EVERY);
        if flush_now {
            let _ = store.set_sync(SyncMode::Full);
        }
        let result = store.write_now(writes);
        if flush_now {
            let _ = store.set_sync(SyncMode::Normal);
            unflushed = None;
        } else if sync == SyncMode::Normal {
            unflushed.get_or_insert_with(Instant::now);
        }
        if let Err(e) = result {
            log::error!("store commit of batch {last} failed: {e}");
            progress
                .failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((first, e.to_string()));
        }
        {
            let _guard = progress.lock.lock().unwrap_or_else(|e| e.into_inner());
            progress.settled.store(last, Ordering::Release);
            progress.changed.notify_all();
        }
        wake();
    }
    drop(store);
    let _guard = progress.lock.lock().unwrap_or_else(|e| e.into_inner());
    progress.changed.notify_all();
}

//! One shutdown signal for the whole process (in the spirit of mini-redis's `shutdown.rs`).
//!
//! A [`Shutdown`] is cloned into every task. [`Shutdown::trigger`] (SIGTERM, SIGINT, or a task that
//! cannot go on) wakes every task that waits on it at once: a periodic task sleeps in
//! [`Shutdown::wait_timeout`] instead of polling a flag, and a task that waits for other events too
//! selects on [`Shutdown::receiver`] beside its own channel. A task with a loop of its own (the log
//! guard's inotify loop, the metrics server's accept loop) reads [`Shutdown::is_triggered`] between
//! steps, which costs one atomic load.
//!
//! Triggering drops the only sender of a channel on which nothing is ever sent: every receiver then
//! sees the channel disconnected, now and forever, however many tasks wait.
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

/// Nothing is ever sent: the channel only ever closes.
enum Never {}

/// The process's shutdown signal: cheap to clone, every clone sees the same trigger.
#[derive(Clone)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    sender: Arc<Mutex<Option<Sender<Never>>>>,
    receiver: Receiver<Never>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

impl Shutdown {
    /// A signal not triggered yet.
    pub fn new() -> Self {
        let (sender, receiver) = crossbeam_channel::bounded(0);
        Self {
            flag: Arc::new(AtomicBool::new(false)),
            sender: Arc::new(Mutex::new(Some(sender))),
            receiver,
        }
    }

    /// A signal triggered by the first SIGTERM or SIGINT (a thread of its own waits for them).
    pub fn on_signals() -> io::Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let shutdown = Self::new();
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
        let s = shutdown.clone();
        std::thread::Builder::new().name("signals".into()).spawn(move || {
            if signals.forever().next().is_some() {
                s.trigger();
            }
        })?;
        Ok(shutdown)
    }

    /// Trigger it: every clone sees it, every waiting task wakes. Idempotent.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        // A poisoned lock still holds the sender: take it out all the same.
        let mut sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        sender.take();
    }

    /// Whether it was triggered (one atomic load: for loops that check between steps).
    pub fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Wait for `timeout` or the trigger, whichever comes first; true when triggered.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        match self.receiver.recv_timeout(timeout) {
            Err(RecvTimeoutError::Disconnected) => true,
            Err(RecvTimeoutError::Timeout) => self.is_triggered(),
            Ok(never) => match never {},
        }
    }

    /// Wait until `deadline` or the trigger; true when triggered.
    pub fn wait_until(&self, deadline: Instant) -> bool {
        self.wait_timeout(deadline.saturating_duration_since(Instant::now()))
    }

    /// A receiver that becomes disconnected when triggered, for `crossbeam_channel::select!` beside
    /// a task's own channels (it never yields a message).
    pub fn receiver(&self) -> &Receiver<impl Sized> {
        &self.receiver
    }

    /// The flag behind it, for code that takes an `&AtomicBool` (the guard's and the backup's loops
    /// read it between steps).
    pub fn flag(&self) -> &Arc<AtomicBool> {
        &self.flag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trigger_wakes_every_waiting_clone_at_once() {
        let shutdown = Shutdown::new();
        let started = Instant::now();
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let s = shutdown.clone();
                std::thread::spawn(move || s.wait_timeout(Duration::from_secs(60)))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!shutdown.is_triggered());
        shutdown.trigger();
        for w in waiters {
            assert!(w.join().unwrap(), "woken by the trigger, not the timeout");
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        // Later waits return at once, and a second trigger is harmless.
        shutdown.trigger();
        assert!(shutdown.wait_timeout(Duration::from_secs(60)));
        assert!(shutdown.flag().load(Ordering::SeqCst));
    }

    #[test]
    fn a_wait_without_trigger_times_out_false() {
        let shutdown = Shutdown::new();
        let started = Instant::now();
        assert!(!shutdown.wait_timeout(Duration::from_millis(30)));
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert!(!shutdown.wait_until(Instant::now()));
    }

    #[test]
    fn the_receiver_is_selectable_beside_a_task_channel() {
        let shutdown = Shutdown::new();
        let (tx, rx) = crossbeam_channel::unbounded::<u32>();
        tx.send(7).unwrap();
        let got = crossbeam_channel::select! {
            recv(rx) -> m => m.ok(),
            recv(shutdown.receiver()) -> _ => None,
        };
        assert_eq!(got, Some(7));
        shutdown.trigger();
        let stopped = crossbeam_channel::select! {
            recv(shutdown.receiver()) -> _ => true,
            default(Duration::from_secs(5)) => false,
        };
        assert!(stopped);
    }
}

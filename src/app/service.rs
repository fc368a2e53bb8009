//! Tasks on threads of their own, stopped together by one [`Shutdown`].
//!
//! A periodic task runs its work, then waits for its period *on the shutdown signal* (it wakes at
//! once on SIGTERM instead of polling a flag); a task with a loop of its own is handed the signal.
//! [`Service::join`] waits for every task: each ends on shutdown, after finishing the step it is in
//! (the guard flushes its checkpoints and report; a backup abandons its partial file).
use std::io;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::shutdown::Shutdown;

/// The service's tasks and the signal that stops them.
pub struct Service {
    shutdown: Shutdown,
    tasks: Vec<JoinHandle<()>>,
}

impl Service {
    /// A service with no task yet, stopped by `shutdown`.
    pub fn new(shutdown: Shutdown) -> Self {
        Self {
            shutdown,
            tasks: Vec::new(),
        }
    }

    /// The signal that stops every task.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// How many tasks were started.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// No task was started.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Run `task` on a thread named `name`; it is handed the shutdown signal and must return soon
    /// after it is triggered.
    pub fn spawn(&mut self, name: &str, task: impl FnOnce(Shutdown) + Send + 'static) -> io::Result<()> {
        let shutdown = self.shutdown.clone();
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || task(shutdown))?;
        self.tasks.push(handle);
        Ok(())
    }

    /// Run `work` now and then every `period` (from the end of one run to the start of the next)
    /// until shutdown.
    pub fn every(&mut self, name: &str, period: Duration, mut work: impl FnMut() + Send + 'static) -> io::Result<()> {
        self.spawn(name, move |shutdown| {
            while !shutdown.is_triggered() {
                work();
                if shutdown.wait_timeout(period) {
                    break;
                }
            }
        })
    }

    /// Wait for every task to end.
    pub fn join(self) {
        for t in self.tasks {
            // A task that panicked has said so through the panic hook; the others still stop.
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn periodic_tasks_run_at_once_and_stop_together_without_waiting_out_their_period() {
        let mut service = Service::new(Shutdown::new());
        let runs = Arc::new(AtomicUsize::new(0));
        for name in ["a", "b"] {
            let runs = runs.clone();
            service
                .every(name, Duration::from_secs(3600), move || {
                    runs.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
        }
        service
            .spawn("loop", |s| while !s.wait_timeout(Duration::from_secs(3600)) {})
            .unwrap();
        assert_eq!(service.len(), 3);
        let deadline = Instant::now() + Duration::from_secs(10);
        while runs.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2, "each periodic task ran once at start");
        let started = Instant::now();
        service.shutdown().trigger();
        service.join();
        assert!(started.elapsed() < Duration::from_secs(5), "stopped at once");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}

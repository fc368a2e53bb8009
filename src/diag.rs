//! Where sidecar's own messages go: stderr. Commands write to it directly; `sidecar run` writes
//! through a bounded in-memory queue drained by one thread ([`detach`]), so that a stderr nobody
//! reads (a full pipe), a slow terminal or a dead file system never blocks the log guard: when the
//! queue is full, messages are dropped and counted ([`dropped`]), masking goes on.
use std::io::Write;
use std::sync::OnceLock;

use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};

/// Messages held while stderr is not taking them; further ones are dropped (about 1 MiB).
const QUEUE_LINES: usize = 4096;

static QUEUE: OnceLock<NonBlocking> = OnceLock::new();

/// Send every later message (from [`say`] and from tracing through [`writer`]) through the queue.
/// Keep the returned guard alive until exit: dropping it writes out what is queued (waiting at most
/// about a second for a blocked stderr). `None` when already detached.
pub fn detach() -> Option<WorkerGuard> {
    let (queue, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUE_LINES)
        .thread_name("stderr")
        .finish(std::io::stderr());
    QUEUE.set(queue).ok().map(|()| guard)
}

/// The writer for tracing's output: the queue once [`detach`]ed, stderr otherwise.
pub fn writer() -> Box<dyn Write> {
    match QUEUE.get() {
        Some(q) => Box::new(q.clone()),
        None => Box::new(std::io::stderr()),
    }
}

/// Write one message line; errors (a closed, full or broken stderr) are ignored. Control
/// characters other than newline and tab are shown escaped ([`crate::escape::terminal_lines`]):
/// messages quote paths, archive entries and container names, and none of them may rewrite the
/// operator's terminal, whatever the call site forgot.
pub fn say(args: std::fmt::Arguments<'_>) {
    let text = match args.as_str() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(args.to_string()),
    };
    let text = crate::escape::terminal_lines(&text);
    match QUEUE.get() {
        Some(q) => {
            let line = format!("{text}\n");
            let _ = q.clone().write_all(line.as_bytes());
        }
        None => {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }
}

/// How many messages were dropped because stderr was not taking them.
pub fn dropped() -> u64 {
    QUEUE.get().map_or(0, |q| q.error_counter().dropped_lines() as u64)
}

//! The process's one tokio runtime, for the few parts that speak async protocols: the Docker API
//! (bollard), S3 (object_store) and the alert webhook (reqwest).
//!
//! sidecar's work is blocking code on threads of its own (the guard, backups, the audit); those
//! parts call [`get`]`().block_on(…)` for one request at a time. One small multi-threaded runtime,
//! made on first use and shared, replaces a runtime per connection: two worker threads carry the
//! connections' background tasks and the parallel parts of an S3 upload. Never call `block_on` from
//! inside a task of this runtime (tokio panics); no code here does.
use std::io;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The runtime, made on first use.
pub fn get() -> io::Result<&'static Runtime> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sidecar-async")
        .enable_all()
        .build()?;
    // Two first callers may both build one: the loser's is dropped (outside any runtime).
    Ok(RUNTIME.get_or_init(|| rt))
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_runtime_serves_blocking_callers_on_many_threads() {
        let a = super::get().unwrap() as *const _;
        let b = std::thread::spawn(|| super::get().unwrap() as *const _ as usize)
            .join()
            .unwrap();
        assert_eq!(a as usize, b);
        let sums: Vec<u64> = (0..4u64)
            .map(|i| std::thread::spawn(move || super::get().unwrap().block_on(async move { i * 2 })))
            .map(|t| t.join().unwrap())
            .collect();
        assert_eq!(sums, [0, 2, 4, 6]);
    }
}

//! The encrypting end of the backup pipeline on a thread of its own, so that age and the upload
//! overlap reading and compressing. Bounded: at most a few 1 MiB chunks in flight. A failure of the
//! thread (disk full, upload failed) is the error reported to the writer.
use std::io::{self, Write};

use crate::store::Upload;

/// The encrypting end of the pipeline (age, SHA-256, the destination), run on a thread of its own
/// so that it overlaps reading and compressing (as `tar | zstd | age` does with three processes).
/// Chunks of 1 MiB, at most `DEPTH` in flight: memory stays bounded.
pub(super) type Sealed = HashingWriter<Box<dyn Upload>>;

pub(super) struct WriteBehind {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    worker: Option<std::thread::JoinHandle<io::Result<Sealed>>>,
    buf: Vec<u8>,
}

impl WriteBehind {
    const CHUNK: usize = 1 << 20;
    const DEPTH: usize = 4;

    pub(super) fn spawn(mut sink: age::stream::StreamWriter<Sealed>) -> io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(Self::DEPTH);
        let worker = std::thread::Builder::new()
            .name("sidecar-backup-write".into())
            .spawn(move || {
                for chunk in rx {
                    sink.write_all(&chunk)?;
                }
                let mut hashing = sink.finish()?;
                hashing.flush()?;
                Ok(hashing)
            })?;
        Ok(WriteBehind {
            tx: Some(tx),
            worker: Some(worker),
            buf: Vec::with_capacity(Self::CHUNK),
        })
    }

    /// The writer thread stopped early: its error (disk full, upload failed) is the one to report.
    fn worker_error(&mut self) -> io::Error {
        self.tx = None;
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => io::Error::other("the backup writer thread panicked"),
            _ => io::Error::other("the backup writer stopped"),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(Self::CHUNK));
        let sent = self.tx.as_ref().map(|tx| tx.send(chunk).is_ok()).unwrap_or(false);
        if sent {
            Ok(())
        } else {
            Err(self.worker_error())
        }
    }

    /// Flush, close age's stream, and hand back the hashing writer (the upload not yet committed).
    pub(super) fn finish(mut self) -> io::Result<Sealed> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        self.tx = None;
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(r)) => r,
            _ => Err(io::Error::other("the backup writer thread panicked")),
        }
    }
}

impl Write for WriteBehind {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(Self::CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == Self::CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts and hashes what passes through.
pub(super) struct HashingWriter<W> {
    /// Where the bytes go.
    pub inner: W,
    /// Hash of what went through.
    pub hasher: blake3::Hasher,
    /// Bytes that went through.
    pub written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

//! Reading a backup: from the store, through age and zstd, into a tar reader, with decryption and
//! decompression on a thread of their own ([`ReadAhead`]) and the backup bytes counted as progress.
//! Errors here say whether the file is not a backup, the key is wrong, or the stream is damaged.
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use super::options::invalid;
use crate::backup::catalog::BackupRef;
use crate::backup::error::BackupError;
use crate::backup::progress::Progress;

/// The identities a backup is decrypted with.
pub(super) type Identities = [Box<dyn age::Identity + Send + Sync>];

/// Open `backup` for reading as a tar stream: decrypted with `identities` (read from
/// `identity_path`, named in messages) and decompressed.
pub(super) fn open_archive(
    backup: &BackupRef,
    identity_path: &Path,
    identities: &Identities,
    progress: &Option<Arc<Progress>>,
) -> Result<tar::Archive<ReadAhead>, BackupError> {
    let label = backup.label();
    let file_path = label.as_str();
    let file = backup.store.open(&backup.name)?;
    let file = CountingReader {
        inner: file,
        progress: progress.clone(),
    };
    let decryptor = age::Decryptor::new_buffered(BufReader::with_capacity(1 << 20, file)).map_err(|e| {
        invalid(
            file_path,
            format!("not a readable age file ({e}); is this a sidecar backup?"),
        )
    })?;
    let plain = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => invalid(
                file_path,
                format!(
                    "none of the identities in {} can decrypt it (wrong key?)",
                    identity_path.display()
                ),
            ),
            e => invalid(file_path, format!("cannot decrypt the header: {e}")),
        })?;
    let zstd = zstd::stream::read::Decoder::new(plain).map_err(|e| invalid(file_path, format!("zstd: {e}")))?;
    let tar_stream = ReadAhead::spawn(zstd).map_err(|e| BackupError::io("starting the restore reader", e))?;
    Ok(tar::Archive::new(tar_stream))
}

/// Counts the backup bytes read into the progress counters.
struct CountingReader<R> {
    inner: R,
    progress: Option<Arc<Progress>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        Progress::add(&self.progress, n as u64, 0);
        Ok(n)
    }
}

/// Reads `inner` on a thread of its own, up to `DEPTH` chunks ahead: decryption and decompression
/// run on one core while the caller parses, hashes and writes on another (as in `age -d | zstd -d |
/// tar -x`). Memory stays bounded by the chunks in flight.
pub(super) struct ReadAhead {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl ReadAhead {
    const CHUNK: usize = 1 << 20;
    const DEPTH: usize = 4;

    fn spawn(mut inner: impl Read + Send + 'static) -> io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel(Self::DEPTH);
        std::thread::Builder::new()
            .name("sidecar-restore-read".into())
            .spawn(move || loop {
                let mut buf = vec![0u8; Self::CHUNK];
                let mut filled = 0;
                let result = loop {
                    match inner.read(&mut buf[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == buf.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(filled);
                let end = filled < Self::CHUNK;
                if filled > 0 && tx.send(Ok(buf)).is_err() {
                    return; // the reader is gone (restore failed): stop
                }
                if let Err(e) = result {
                    let _ = tx.send(Err(e));
                    return;
                }
                if end {
                    return; // dropping tx is the end of the stream
                }
            })?;
        Ok(ReadAhead {
            rx,
            chunk: Vec::new(),
            pos: 0,
        })
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(c)) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_ahead_passes_every_byte_and_the_error_after_them() {
        let data: Vec<u8> = (0..(3 * ReadAhead::CHUNK + 12_345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut got = Vec::new();
        ReadAhead::spawn(io::Cursor::new(data.clone()))
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got, data);

        struct Failing(io::Cursor<Vec<u8>>);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(io::Error::new(io::ErrorKind::InvalidData, "bad tag")),
                    n => Ok(n),
                }
            }
        }
        let mut r = ReadAhead::spawn(Failing(io::Cursor::new(data.clone()))).unwrap();
        let mut got = Vec::new();
        let err = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(got, data, "everything before the error arrives first");
    }
}

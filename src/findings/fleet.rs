//! Findings of many hosts in one place: each host ships its new finding records, gzip-compressed, to
//! `<dest>/<host>/` (a local directory or `s3://bucket/prefix`), and `sidecar report --from <dest>`
//! reads every host's objects into one report.
//!
//! Shipping is idempotent: an object is named after the BLAKE3 hash of its content, so a chunk sent
//! again after a kill (sent, but not yet recorded) overwrites itself instead of duplicating.
//! `<state_dir>/shipped.json` records, per local findings file, its inode and how far it was sent.
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::read::{finding_files, read_findings_from, SUMMARY_PREFIX};
use super::record::FindingRecord;
use crate::store::{open_store, StoreError};

/// Uncompressed bytes of records in one shipped object, at most (about).
const MAX_OBJECT: u64 = 32 << 20;

/// How far each local findings file was shipped: name → (inode, bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Shipped {
    #[serde(default)]
    files: BTreeMap<String, (u64, u64)>,
}

fn shipped_path(state_dir: &Path) -> std::path::PathBuf {
    crate::state::StateDir::new(state_dir).shipped()
}

/// Send the complete records not sent yet of every plain findings file to `<dest>/<host>/`.
/// (Compressed rotated files hold what was shipped while they were plain.) Returns the objects written.
pub fn ship(state_dir: &Path, dest: &str, host: &str) -> Result<usize, StoreError> {
    if host.is_empty() || host.contains('/') || host.starts_with('.') {
        return Err(StoreError::Destination(format!(
            "fleet host name {host:?}: must be non-empty, without '/'"
        )));
    }
    let store = open_store(&format!("{}/{host}", dest.trim_end_matches('/')))?;
    store.prepare()?;
    let io_err = |what: String| move |e: io::Error| StoreError::io(what, e);
    let mut shipped: Shipped = crate::fsutil::read_input(&shipped_path(state_dir), crate::fsutil::InputKind::STATE)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let files = match finding_files(&crate::state::StateDir::new(state_dir).findings()) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(StoreError::io("findings directory", e)),
    };
    let mut written = 0;
    // Summaries are skipped: they aggregate occurrence records that were shipped while plain.
    for path in files.iter().filter(|p| {
        p.extension().is_none_or(|e| e != "gz")
            && !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(SUMMARY_PREFIX))
    }) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut file = File::open(path).map_err(io_err(path.display().to_string()))?;
        let md = file.metadata().map_err(io_err(path.display().to_string()))?;
        let start = match shipped.files.get(&name) {
            Some(&(ino, off)) if ino == md.ino() && off <= md.len() => off,
            _ => 0,
        };
        // Complete records only: up to the last newline.
        let mut chunk = Vec::new();
        file.seek(SeekFrom::Start(start))
            .map_err(io_err(path.display().to_string()))?;
        let mut reader = (&mut file).take(md.len() - start);
        let mut cut = start;
        let mut buf = vec![0u8; 256 << 10];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut pending = Vec::new();
        loop {
            let n = reader.read(&mut buf).map_err(io_err(path.display().to_string()))?;
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
            if let Some(i) = memchr::memrchr(b'\n', &pending) {
                gz.write_all(&pending[..=i]).map_err(io_err("compressing".into()))?;
                cut += i as u64 + 1;
                pending.drain(..=i);
            }
            // Bounded objects (and memory): the rest goes in the next round.
            if cut - start >= MAX_OBJECT || pending.len() > MAX_OBJECT as usize {
                break;
            }
        }
        if cut == start {
            continue;
        }
        chunk.extend(gz.finish().map_err(io_err("compressing".into()))?);
        let object = format!("findings-{}.jsonl.gz", &blake3::hash(&chunk).to_hex()[..32]);
        let mut up = store.create(&object)?;
        up.write_all(&chunk).map_err(io_err(store.locate(&object)))?;
        up.commit()?;
        written += 1;
        shipped.files.insert(name, (md.ino(), cut));
        crate::fsutil::create_private_dir(state_dir).map_err(io_err(state_dir.display().to_string()))?;
        crate::fsutil::write_atomic(
            &shipped_path(state_dir),
            &serde_json::to_vec(&shipped).map_err(|e| StoreError::io("shipped.json", e.into()))?,
        )
        .map_err(io_err("shipped.json".into()))?;
    }
    Ok(written)
}

/// Read every host's shipped findings under `dest`; the container of each record is prefixed
/// with its host (`host/container`). Returns the number of damaged records.
pub fn read_fleet(dest: &str, mut each: impl FnMut(FindingRecord)) -> Result<u64, StoreError> {
    let root = open_store(dest)?;
    let mut damaged = 0;
    for host in root.children()? {
        let store = open_store(&format!("{}/{host}", dest.trim_end_matches('/')))?;
        let mut objects: Vec<String> = store
            .list()?
            .into_iter()
            .map(|o| o.name)
            .filter(|n| n.starts_with("findings-") && n.ends_with(".jsonl.gz"))
            .collect();
        objects.sort();
        for name in objects {
            let reader = store.open(&name)?;
            damaged += read_findings_from(reader, &mut |mut r: FindingRecord| {
                let c = r
                    .container
                    .clone()
                    .or_else(|| r.finding.container_id.as_ref().map(|id| id.chars().take(12).collect()))
                    .unwrap_or_default();
                r.container = Some(format!("{host}/{c}"));
                each(r)
            })
            .map_err(|e| StoreError::io(store.locate(&name), e))?;
        }
    }
    Ok(damaged)
}

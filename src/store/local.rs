//! A store in a local directory: files are written under a random dot name, fsynced, and renamed
//! into place (then the directory is fsynced), so a killed write never looks like a finished file.
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{ioerr, Object, Store, StoreError, Upload};

/// A local directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    /// The store in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LocalStore { dir: dir.into() }
    }
    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

struct LocalUpload {
    tmp: PathBuf,
    dest: PathBuf,
    dir: PathBuf,
    out: Option<BufWriter<File>>,
}

impl Write for LocalUpload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.as_mut().ok_or_else(|| io::Error::other("closed"))?.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().ok_or_else(|| io::Error::other("closed"))?.flush()
    }
}

impl Upload for LocalUpload {
    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        let ctx = format!("writing {}", self.dest.display());
        let out = self
            .out
            .take()
            .ok_or_else(|| StoreError::io(ctx.clone(), io::Error::other("closed")))?;
        let file = out
            .into_inner()
            .map_err(|e| StoreError::io(ctx.clone(), e.into_error()))?;
        file.sync_all().map_err(ioerr(ctx.clone()))?;
        drop(file);
        fs::rename(&self.tmp, &self.dest).map_err(ioerr(format!("renaming into {}", self.dest.display())))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(ioerr(format!("fsync {}", self.dir.display())))
    }
    fn cleanup(&self) -> Box<dyn FnOnce() + Send> {
        let tmp = self.tmp.clone();
        Box::new(move || {
            let _ = fs::remove_file(tmp);
        })
    }
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Store for LocalStore {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }
    fn locate(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
    fn prepare(&self) -> Result<(), StoreError> {
        crate::fsutil::create_private_dir(&self.dir).map_err(ioerr(format!("destination {}", self.dir.display())))
    }
    fn children(&self) -> Result<Vec<String>, StoreError> {
        let rd = fs::read_dir(&self.dir).map_err(ioerr(format!("destination {}", self.dir.display())))?;
        let mut v: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        v.sort();
        Ok(v)
    }
    fn list(&self) -> Result<Vec<Object>, StoreError> {
        let rd = fs::read_dir(&self.dir).map_err(ioerr(format!("destination {}", self.dir.display())))?;
        Ok(rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let md = e.metadata().ok()?;
                md.is_file().then(|| Object {
                    name: e.file_name().to_string_lossy().into_owned(),
                    size: md.len(),
                    modified: md.modified().ok(),
                })
            })
            .collect())
    }
    fn create(&self, name: &str) -> Result<Box<dyn Upload>, StoreError> {
        // A dot name that does not end in the final name's suffix: a killed write never looks like
        // a finished file.
        let rnd = crate::fsutil::random_suffix().map_err(|e| StoreError::io("random name", e))?;
        let tmp = self.dir.join(format!(".{name}.{rnd}.partial"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(ioerr(format!("writing {}", tmp.display())))?;
        Ok(Box::new(LocalUpload {
            tmp,
            dest: self.dir.join(name),
            dir: self.dir.clone(),
            out: Some(BufWriter::with_capacity(1 << 20, file)),
        }))
    }
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, StoreError> {
        let p = self.dir.join(name);
        Ok(Box::new(
            File::open(&p).map_err(ioerr(format!("opening {}", p.display())))?,
        ))
    }
    fn delete(&self, name: &str) -> Result<(), StoreError> {
        let p = self.dir.join(name);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StoreError::io(format!("deleting {}", p.display()), e))
            }
            _ => Ok(()),
        }
    }
    fn exists(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.dir.join(name).exists())
    }
    fn lock(&self) -> Result<Option<File>, StoreError> {
        super::try_lock(&self.dir).map_err(ioerr(format!("backup lock in {}", self.dir.display())))
    }
    fn sweep(&self, prefix: &str, age: Duration) -> Result<usize, StoreError> {
        let mut n = 0;
        for e in fs::read_dir(&self.dir)
            .map_err(ioerr(format!("destination {}", self.dir.display())))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = name.starts_with(&format!(".{prefix}")) && name.ends_with(".partial");
            let old = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|a| a > age);
            if ours && old {
                fs::remove_file(e.path()).map_err(ioerr(format!("deleting {}", e.path().display())))?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_upload_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let mut up = store.create("a.tar.zst.age").unwrap();
        up.write_all(b"hello").unwrap();
        assert!(!store.exists("a.tar.zst.age").unwrap());
        drop(up);
        assert!(store.list().unwrap().is_empty(), "a dropped upload leaves nothing");
        let mut up = store.create("a.tar.zst.age").unwrap();
        up.write_all(b"hello").unwrap();
        up.commit().unwrap();
        let names: Vec<_> = store.list().unwrap().into_iter().map(|o| o.name).collect();
        assert_eq!(names, ["a.tar.zst.age"]);
        let mut text = String::new();
        store.open("a.tar.zst.age").unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello");
    }
}

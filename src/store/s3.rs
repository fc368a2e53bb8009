//! A store in an S3-compatible bucket under a key prefix: uploads are multipart (invisible until
//! completed, aborted on failure), reads stream. Credentials come from the usual `AWS_*` variables,
//! their `*_FILE` forms or the shared credentials file, and never appear in messages.
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStoreExt as _;

use super::{ioerr, Object, Store, StoreError, Upload};

/// Size of the parts of a multipart upload: 8 MiB for the first 5,000 parts, then 32 MiB (S3 allows
/// 10,000 parts: about 195 GiB in all). One part is filled while the previous one uploads.
const PART: usize = 8 << 20;
const BIG_PART: usize = 32 << 20;
const BIG_AFTER: usize = 5_000;

/// An S3-compatible bucket (AWS, MinIO, Garage, Backblaze B2, Wasabi, …) under a key prefix.
pub struct S3Store {
    rt: &'static tokio::runtime::Runtime,
    store: Arc<dyn object_store::ObjectStore>,
    bucket: String,
    prefix: String,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Store(s3://{}/{})", self.bucket, self.prefix)
    }
}

fn s3err(what: String) -> impl FnOnce(object_store::Error) -> StoreError {
    move |e| {
        let kind = match &e {
            object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                io::ErrorKind::PermissionDenied
            }
            _ => io::ErrorKind::Other,
        };
        StoreError::io(what, io::Error::new(kind, e.to_string()))
    }
}

/// An `AWS_*` setting: the variable itself, else the file named by `<VAR>_FILE` (Docker secrets).
fn env_or_file(var: &str) -> Result<Option<String>, StoreError> {
    if let Ok(v) = std::env::var(var) {
        return Ok(Some(v));
    }
    let Ok(path) = std::env::var(format!("{var}_FILE")) else {
        return Ok(None);
    };
    let text = crate::fsutil::read_input_string(Path::new(&path), crate::fsutil::InputKind::SECRET)
        .map_err(ioerr(format!("{var}_FILE")))?;
    Ok(Some(text.trim().to_string()))
}

/// `(access key id, secret, session token)` of a profile in an AWS shared credentials file.
fn shared_credentials(path: &Path, profile: &str) -> Option<(String, String, Option<String>)> {
    let text = crate::fsutil::read_input_string(path, crate::fsutil::InputKind::AWS_CREDENTIALS).ok()?;
    let (mut id, mut secret, mut token, mut in_profile) = (None, None, None, false);
    for line in text.lines() {
        let line = line.trim();
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = section.trim() == profile;
            continue;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        if in_profile {
            let v = v.trim().to_string();
            match k.trim() {
                "aws_access_key_id" => id = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    Some((id?, secret?, token))
}

impl S3Store {
    /// `bucket/prefix` (after `s3://`), configured from the usual `AWS_*` variables (`AWS_REGION`,
    /// `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), their
    /// `*_FILE` forms, or the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default
    /// `~/.aws/credentials`, profile `AWS_PROFILE`).
    pub fn new(spec: &str) -> Result<Self, StoreError> {
        let (bucket, prefix) = spec.split_once('/').unwrap_or((spec, ""));
        let prefix = prefix.trim_matches('/').to_string();
        if bucket.is_empty() {
            return Err(StoreError::Destination(
                "destination s3://: no bucket (use s3://bucket/prefix)".into(),
            ));
        }
        // rustls needs one process-wide crypto provider; another caller may have installed it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        let from_file = |var: &str| -> Result<Option<String>, StoreError> {
            if std::env::var_os(var).is_some() {
                return Ok(None); // from_env took it
            }
            env_or_file(var)
        };
        if let Some(v) = from_file("AWS_ACCESS_KEY_ID")? {
            b = b.with_access_key_id(v);
        }
        if let Some(v) = from_file("AWS_SECRET_ACCESS_KEY")? {
            b = b.with_secret_access_key(v);
        }
        if let Some(v) = from_file("AWS_SESSION_TOKEN")? {
            b = b.with_token(v);
        }
        let have_keys = env_or_file("AWS_ACCESS_KEY_ID")?.is_some();
        if !have_keys {
            let file = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".aws/credentials")));
            let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
            if let Some((id, secret, token)) = file.and_then(|f| shared_credentials(&f, &profile)) {
                b = b.with_access_key_id(id).with_secret_access_key(secret);
                if let Some(t) = token {
                    b = b.with_token(t);
                }
            }
        }
        let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .ok();
        if let Some(ep) = &endpoint {
            // An explicitly configured plain-HTTP endpoint (a MinIO on the same host) is allowed:
            // backups are encrypted end to end and requests are signed, never carrying the secret.
            if ep.starts_with("http://") {
                b = b.with_allow_http(true);
            }
        }
        if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none() {
            b = b.with_region("us-east-1");
        }
        b = b.with_retry(object_store::RetryConfig {
            max_retries: 5,
            retry_timeout: Duration::from_secs(120),
            backoff: object_store::BackoffConfig::default(),
        });
        let store = b
            .build()
            .map_err(|e| StoreError::Destination(format!("destination s3://{spec}: {e}")))?;
        let rt = crate::runtime::get().map_err(ioerr("starting the S3 client".into()))?;
        Ok(S3Store {
            rt,
            store: Arc::new(store),
            bucket: bucket.to_string(),
            prefix,
        })
    }

    fn key(&self, name: &str) -> object_store::path::Path {
        if self.prefix.is_empty() {
            object_store::path::Path::from(name)
        } else {
            object_store::path::Path::from(format!("{}/{name}", self.prefix))
        }
    }
}

struct S3Upload {
    rt: tokio::runtime::Handle,
    store: Arc<dyn object_store::ObjectStore>,
    key: object_store::path::Path,
    label: String,
    buf: Vec<u8>,
    upload: Option<Box<dyn object_store::MultipartUpload>>,
    parts: usize,
    inflight: Option<tokio::task::JoinHandle<object_store::Result<()>>>,
    done: bool,
}

impl S3Upload {
    fn part_size(&self) -> usize {
        if self.parts < BIG_AFTER {
            PART
        } else {
            BIG_PART
        }
    }

    fn wait_inflight(&mut self) -> io::Result<()> {
        if let Some(h) = self.inflight.take() {
            self.rt
                .block_on(h)
                .map_err(|e| io::Error::other(e.to_string()))?
                .map_err(|e| io::Error::other(format!("uploading part of {}: {e}", self.label)))?;
        }
        Ok(())
    }

    fn send_part(&mut self) -> io::Result<()> {
        if self.upload.is_none() {
            let up = self
                .rt
                .block_on(self.store.put_multipart(&self.key))
                .map_err(|e| io::Error::other(format!("starting the upload of {}: {e}", self.label)))?;
            self.upload = Some(up);
        }
        self.parts += 1;
        let next = self.part_size();
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(next));
        let fut = self.upload.as_mut().expect("started above").put_part(data.into());
        // One part uploads while the next one fills.
        self.wait_inflight()?;
        self.inflight = Some(self.rt.spawn(fut));
        Ok(())
    }
}

impl Write for S3Upload {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.part_size() - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.part_size() {
            self.send_part()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Upload for S3Upload {
    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        let ctx = format!("uploading {}", self.label);
        if self.upload.is_none() {
            // Small enough for one request: a plain PUT is atomic too.
            let data = std::mem::take(&mut self.buf);
            self.rt
                .block_on(self.store.put(&self.key, data.into()))
                .map_err(s3err(ctx))?;
            self.done = true;
            return Ok(());
        }
        if !self.buf.is_empty() {
            self.send_part().map_err(ioerr(ctx.clone()))?;
        }
        self.wait_inflight().map_err(ioerr(ctx.clone()))?;
        let up = self.upload.as_mut().expect("started");
        self.rt.block_on(up.complete()).map_err(s3err(ctx))?;
        self.done = true;
        Ok(())
    }
    fn cleanup(&self) -> Box<dyn FnOnce() + Send> {
        // Not completed, the upload stays invisible; the bucket's lifecycle rule removes its parts.
        Box::new(|| {})
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(h) = self.inflight.take() {
            h.abort();
        }
        if let Some(mut up) = self.upload.take() {
            // Parts uploaded so far are discarded; the object never appears. If the server is gone,
            // the bucket's lifecycle rule for incomplete multipart uploads cleans up (README).
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(30), up.abort()).await });
        }
    }
}

struct S3Reader {
    rt: tokio::runtime::Handle,
    stream: futures_util::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
    label: String,
}

impl Read for S3Reader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        use futures_util::StreamExt as _;
        while self.chunk.is_empty() {
            match self.rt.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(b)) => self.chunk = b,
                Some(Err(e)) => return Err(io::Error::other(format!("downloading {}: {e}", self.label))),
            }
        }
        let n = out.len().min(self.chunk.len());
        out[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

impl Store for S3Store {
    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
    fn prepare(&self) -> Result<(), StoreError> {
        // Fail early, with a clear message, when the bucket is unreachable or the keys are wrong.
        self.list().map(|_| ())
    }
    fn children(&self) -> Result<Vec<String>, StoreError> {
        let prefix = (!self.prefix.is_empty()).then(|| object_store::path::Path::from(self.prefix.as_str()));
        let listing = self
            .rt
            .block_on(self.store.list_with_delimiter(prefix.as_ref()))
            .map_err(s3err(format!("listing {}", self.describe())))?;
        let mut v: Vec<String> = listing
            .common_prefixes
            .into_iter()
            .filter_map(|p| p.filename().map(String::from))
            .collect();
        v.sort();
        Ok(v)
    }
    fn list(&self) -> Result<Vec<Object>, StoreError> {
        let prefix = (!self.prefix.is_empty()).then(|| object_store::path::Path::from(self.prefix.as_str()));
        let listing = self
            .rt
            .block_on(self.store.list_with_delimiter(prefix.as_ref()))
            .map_err(s3err(format!("listing {}", self.describe())))?;
        Ok(listing
            .objects
            .into_iter()
            .filter_map(|o| {
                Some(Object {
                    name: o.location.filename()?.to_string(),
                    size: o.size,
                    modified: Some(o.last_modified.into()),
                })
            })
            .collect())
    }
    fn create(&self, name: &str) -> Result<Box<dyn Upload>, StoreError> {
        Ok(Box::new(S3Upload {
            rt: self.rt.handle().clone(),
            store: self.store.clone(),
            key: self.key(name),
            label: self.locate(name),
            buf: Vec::with_capacity(PART),
            upload: None,
            parts: 0,
            inflight: None,
            done: false,
        }))
    }
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, StoreError> {
        let got = self
            .rt
            .block_on(self.store.get(&self.key(name)))
            .map_err(s3err(format!("opening {}", self.locate(name))))?;
        Ok(Box::new(S3Reader {
            rt: self.rt.handle().clone(),
            stream: got.into_stream(),
            chunk: bytes::Bytes::new(),
            label: self.locate(name),
        }))
    }
    fn delete(&self, name: &str) -> Result<(), StoreError> {
        match self.rt.block_on(self.store.delete(&self.key(name))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(s3err(format!("deleting {}", self.locate(name)))(e)),
        }
    }
    fn exists(&self, name: &str) -> Result<bool, StoreError> {
        match self.rt.block_on(self.store.head(&self.key(name))) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(s3err(format!("looking up {}", self.locate(name)))(e)),
        }
    }
    fn lock(&self) -> Result<Option<File>, StoreError> {
        // Runs on this host never overlap: the lock lives in a local directory keyed by the bucket
        // and prefix (an S3 bucket has no lock sidecar could rely on).
        use sha2::Digest as _;
        let key = hex::encode(&sha2::Sha256::digest(self.describe().as_bytes())[..8]);
        let dir = std::env::temp_dir().join(format!("sidecar-s3-lock-{key}"));
        super::try_lock(&dir).map_err(ioerr(format!("backup lock in {}", dir.display())))
    }
    fn sweep(&self, _prefix: &str, _age: Duration) -> Result<usize, StoreError> {
        // Incomplete multipart uploads are invisible and aborted on failure; a killed process leaves
        // parts that the bucket's AbortIncompleteMultipartUpload lifecycle rule removes (README).
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_credentials_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("credentials");
        std::fs::write(
            &f,
            "[default]\naws_access_key_id = AKIDEFAULT\naws_secret_access_key = s1\n\n[backup]\naws_access_key_id=AKIBACKUP\naws_secret_access_key=s2\naws_session_token=t2\n",
        )
        .unwrap();
        assert_eq!(
            shared_credentials(&f, "default"),
            Some(("AKIDEFAULT".into(), "s1".into(), None))
        );
        assert_eq!(
            shared_credentials(&f, "backup"),
            Some(("AKIBACKUP".into(), "s2".into(), Some("t2".into())))
        );
        assert_eq!(shared_credentials(&f, "missing"), None);
    }
}

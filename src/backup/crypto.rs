//! age recipients and identities. The host only ever holds recipients (public keys): it can write
//! backups but not read them. Restores take an identity file the operator brings.
use std::io::BufRead;
use std::path::Path;
use std::str::FromStr;

use super::error::BackupError;

/// A parsed age recipient: an `age1…` X25519 key or an `ssh-ed25519`/`ssh-rsa` public key.
pub enum Recipient {
    /// `age1…`
    X25519(age::x25519::Recipient),
    /// An SSH public key line.
    Ssh(age::ssh::Recipient),
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recipient::X25519(r) => write!(f, "{r}"),
            Recipient::Ssh(_) => f.write_str("ssh recipient"),
        }
    }
}

impl Recipient {
    /// Parse one recipient string.
    pub fn parse(s: &str) -> Result<Self, BackupError> {
        let s = s.trim();
        if s.starts_with("age1") {
            age::x25519::Recipient::from_str(s)
                .map(Recipient::X25519)
                .map_err(|e| BackupError::Recipient(format!("`{s}`: {e}")))
        } else if s.starts_with("ssh-") {
            age::ssh::Recipient::from_str(s)
                .map(Recipient::Ssh)
                .map_err(|e| BackupError::Recipient(format!("ssh key `{}…`: {e:?}", &s[..s.len().min(24)])))
        } else {
            Err(BackupError::Recipient(format!(
                "`{}`: not an age recipient (expected `age1…` or an `ssh-ed25519`/`ssh-rsa` public key)",
                &s[..s.len().min(24)]
            )))
        }
    }

    /// A copy (recipients are plain public keys).
    pub fn clone_parsed(&self) -> Self {
        match self {
            Recipient::X25519(r) => Recipient::X25519(r.clone()),
            Recipient::Ssh(r) => Recipient::Ssh(r.clone()),
        }
    }

    /// As the trait object the age encryptor takes.
    pub fn as_dyn(&self) -> &dyn age::Recipient {
        match self {
            Recipient::X25519(r) => r,
            Recipient::Ssh(r) => r,
        }
    }
}

/// Read a recipients file: one recipient per line, blank lines and `#` comments ignored.
pub fn read_recipients_file(path: &Path) -> Result<Vec<Recipient>, BackupError> {
    let text = crate::fsutil::read_input_string(path, crate::fsutil::InputKind::RECIPIENTS)
        .map_err(|e| BackupError::io("reading the recipients", e))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        out.push(Recipient::parse(t)?);
    }
    Ok(out)
}

/// Load the identities (private keys) from an age identity file or an SSH private key file.
pub fn read_identities(path: &Path) -> Result<Vec<Box<dyn age::Identity + Send + Sync>>, BackupError> {
    let ctx = || format!("identity file {}", path.display());
    let text = crate::fsutil::read_input(path, crate::fsutil::InputKind::IDENTITY)
        .map_err(|e| BackupError::io("reading the identity", e))?;
    if text.starts_with(b"-----BEGIN OPENSSH PRIVATE KEY-----") || text.starts_with(b"-----BEGIN RSA PRIVATE KEY-----")
    {
        let id = age::ssh::Identity::from_buffer(&text[..], Some(path.display().to_string()))
            .map_err(|e| BackupError::io(ctx(), e))?;
        if let age::ssh::Identity::Unencrypted(_) = id {
            return Ok(vec![Box::new(id)]);
        }
        return Err(BackupError::Identity(format!(
            "{}: encrypted or unsupported SSH key; decrypt it first (ssh-keygen -p) or use an age identity",
            path.display()
        )));
    }
    let file = age::IdentityFile::from_buffer(&text[..]).map_err(|e| BackupError::io(ctx(), e))?;
    let ids = file
        .into_identities()
        .map_err(|e| BackupError::Identity(format!("{}: {e}", path.display())))?;
    if ids.is_empty() {
        return Err(BackupError::Identity(format!(
            "{}: no identity in the file (expected `AGE-SECRET-KEY-1…` lines)",
            path.display()
        )));
    }
    Ok(ids)
}

/// The stanza types of an age file's header (`X25519`, `ssh-ed25519`, `ssh-rsa`, `scrypt`, …), read
/// without any key: enough to check who a backup was encrypted to. The random "grease" stanzas age
/// adds to keep parsers tolerant (tags ending in `-grease`) are no recipients and are left out.
pub fn header_stanzas(reader: &mut impl std::io::BufRead, label: &str) -> Result<Vec<String>, BackupError> {
    let bad = |problem: &str| BackupError::Invalid {
        file: label.to_string(),
        problem: problem.to_string(),
    };
    use std::io::Read as _;
    let mut first = Vec::new();
    (&mut *reader)
        .take(64)
        .read_until(b'\n', &mut first)
        .map_err(|e| BackupError::io(format!("reading {label}"), e))?;
    if first != b"age-encryption.org/v1\n" {
        return Err(bad("not an age file (no `age-encryption.org/v1` header)"));
    }
    let mut stanzas = Vec::new();
    let mut line = Vec::new();
    // Headers are small; stop at 1 MiB so a hostile file cannot make this read forever.
    let mut limited = reader.take(1 << 20);
    loop {
        line.clear();
        let n = limited
            .read_until(b'\n', &mut line)
            .map_err(|e| BackupError::io(format!("reading {label}"), e))?;
        if n == 0 {
            return Err(bad("age header is truncated (no `---` line)"));
        }
        if line.starts_with(b"---") {
            return Ok(stanzas);
        }
        if let Some(rest) = line.strip_prefix(b"-> ") {
            let tag = rest.split(|&b| b == b' ' || b == b'\n').next().unwrap_or_default();
            if !tag.ends_with(b"-grease") {
                stanzas.push(String::from_utf8_lossy(tag).into_owned());
            }
        }
    }
}

/// The header stanza type a recipient produces.
pub fn stanza_tag(r: &Recipient) -> &'static str {
    match r {
        Recipient::X25519(_) => "X25519",
        Recipient::Ssh(age::ssh::Recipient::SshEd25519(..)) => "ssh-ed25519",
        Recipient::Ssh(_) => "ssh-rsa",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grease_stanzas_are_no_recipients() {
        let header = b"age-encryption.org/v1\n-> X25519 c2FsdA\nYm9keQ\n-> O9fnz-grease 8 zz\nZ3JlYXNl\n-> ssh-ed25519 a b\nYm9keQ\n--- bWFj\n\x00binary";
        let got = header_stanzas(&mut &header[..], "test").unwrap();
        assert_eq!(got, ["X25519", "ssh-ed25519"]);
    }
}

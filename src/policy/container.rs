//! What the container checks look at: `docker inspect`, `docker history` and `docker diff` of one
//! container, as gathered by [`audit`](super::audit) (the checks are in
//! [`checks::container`](super::checks::container)).
use bollard::models::{ContainerInspectResponse, FilesystemChange};

/// A secret found in a text: the rule and the keyed fingerprint, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHit {
    /// Rule id.
    pub rule: String,
    /// Keyed fingerprint (see [`crate::redact::FingerprintKey`]).
    pub fingerprint: String,
}

/// Everything the container checks look at.
#[derive(Debug, Clone)]
pub struct ContainerFacts {
    /// `docker inspect`.
    pub inspect: ContainerInspectResponse,
    /// `CreatedBy` of each image layer, or why it could not be read.
    pub history: Result<Vec<String>, String>,
    /// `docker diff`, or why it could not be read.
    pub changes: Result<Vec<FilesystemChange>, String>,
}

impl ContainerFacts {
    /// Name without the leading `/` (the short ID when there is none).
    pub fn name(&self) -> String {
        match self.inspect.name.as_deref() {
            Some(n) if !n.is_empty() => n.trim_start_matches('/').to_string(),
            _ => self.inspect.id.as_deref().unwrap_or("?").chars().take(12).collect(),
        }
    }

    /// The container's labels.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(key))
            .map(String::as_str)
    }
}

//! Alerts on new secrets: one POST to a webhook per new fingerprint (not per occurrence), with a
//! Slack-compatible `text` field, retried with back-off. The payload carries rule, severity,
//! containers, times, fingerprint and masked preview, never the secret. Which fingerprints were
//! alerted is kept in `<state_dir>/alerted.json` (written atomically), so each is sent once.
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::group::{Item, ItemStatus};
use super::record::short_fingerprint;

/// Fingerprints already alerted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alerted {
    /// The fingerprints.
    #[serde(default)]
    pub fingerprints: BTreeSet<String>,
}

impl Alerted {
    fn path(state_dir: &Path) -> PathBuf {
        crate::state::StateDir::new(state_dir).alerted()
    }

    /// Load (absent: none alerted yet).
    pub fn load(state_dir: &Path) -> io::Result<Alerted> {
        match crate::fsutil::read_input(&Self::path(state_dir), crate::fsutil::InputKind::STATE) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Alerted::default()),
            Err(e) => Err(e),
        }
    }

    /// Save atomically (0600).
    pub fn save(&self, state_dir: &Path) -> io::Result<()> {
        crate::fsutil::create_private_dir(state_dir)?;
        crate::fsutil::write_atomic(&Self::path(state_dir), &serde_json::to_vec(self)?)
    }
}

/// Where and how to send.
#[derive(Clone)]
pub struct Webhook {
    /// The URL (often a secret itself: never logged).
    pub url: String,
    /// Attempts per alert.
    pub attempts: u32,
    /// First back-off; doubled after each failed attempt.
    pub backoff: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The host name put in the payload.
    pub host: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL of a Slack-style webhook is a credential.
        write!(f, "Webhook({} attempts)", self.attempts)
    }
}

/// The JSON payload for one new secret.
pub fn payload(item: &Item, host: &str) -> serde_json::Value {
    let containers: Vec<&String> = item.containers.iter().collect();
    // The text is read as Slack `mrkdwn`: names from outside must not become links or mentions.
    let esc = crate::escape::slack;
    serde_json::json!({
        "text": format!(
            "sidecar on {}: new secret found: {} ({}) in {}, first seen {}, {} occurrence(s), fingerprint {}, preview {}",
            esc(host),
            esc(&item.rule),
            item.severity.as_str(),
            item.containers.iter().map(|c| esc(c)).collect::<Vec<_>>().join(", "),
            esc(&item.first_seen),
            item.count,
            short_fingerprint(&item.fingerprint),
            esc(&item.preview)
        ),
        "host": host,
        "fingerprint": item.fingerprint,
        "rule": item.rule,
        "severity": item.severity.as_str(),
        "containers": containers,
        "first_seen": item.first_seen,
        "last_seen": item.last_seen,
        "count": item.count,
        "preview": item.preview,
    })
}

/// POST `body` with retries; `Err` holds the last problem (never the URL).
fn post(client: &reqwest::Client, rt: &tokio::runtime::Runtime, hook: &Webhook, body: Vec<u8>) -> Result<(), String> {
    let mut wait = hook.backoff;
    let mut last = String::new();
    for attempt in 1..=hook.attempts.max(1) {
        // Built inside the runtime: the request's timeout is a timer of that runtime.
        let sent = rt.block_on(async {
            client
                .post(&hook.url)
                .header("content-type", "application/json")
                .timeout(hook.timeout)
                .body(body.clone())
                .send()
                .await
        });
        match sent {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("HTTP {}", r.status()),
            // reqwest's error text can include the URL: keep only its kind.
            Err(e) => {
                last = if e.is_timeout() {
                    "timed out".into()
                } else if e.is_connect() {
                    "connection failed".into()
                } else {
                    "request failed".into()
                }
            }
        }
        if attempt < hook.attempts {
            std::thread::sleep(wait);
            wait = wait.saturating_mul(2);
        }
    }
    Err(last)
}

/// Send one alert per item not yet alerted (new items only; acknowledged ones are not news),
/// recording each success. Returns (sent, failed) counts; failed ones are tried again next time.
pub fn send_new(items: &[Item], hook: &Webhook, state_dir: &Path) -> io::Result<(usize, Vec<String>)> {
    let mut alerted = Alerted::load(state_dir)?;
    let todo: Vec<&Item> = items
        .iter()
        .filter(|i| i.status == ItemStatus::New && !alerted.fingerprints.contains(&i.fingerprint))
        .collect();
    if todo.is_empty() {
        return Ok((0, Vec::new()));
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = crate::runtime::get()?;
    let client = {
        let _in_runtime = rt.enter();
        reqwest::Client::builder()
            .build()
            .map_err(|_| io::Error::other("cannot build the HTTP client"))?
    };
    let mut sent = 0;
    let mut failed = Vec::new();
    for item in todo {
        let body = serde_json::to_vec(&payload(item, &hook.host))?;
        match post(&client, rt, hook, body) {
            Ok(()) => {
                alerted.fingerprints.insert(item.fingerprint.clone());
                alerted.save(state_dir)?;
                sent += 1;
            }
            Err(why) => failed.push(format!("{}: {why}", short_fingerprint(&item.fingerprint))),
        }
    }
    Ok((sent, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_outside_cannot_link_or_notify_in_the_text() {
        let item = Item {
            fingerprint: "f".repeat(64),
            rule: "github-pat".into(),
            description: String::new(),
            severity: crate::redact::Severity::High,
            first_seen: "2026-11-01T10:00:00Z".into(),
            last_seen: "2026-11-01T10:00:00Z".into(),
            count: 1,
            containers: [
                "<!channel>".to_string(),
                "<https://evil.example|click> & co".to_string(),
            ]
            .into(),
            preview: "ghp_****".into(),
            status: ItemStatus::New,
            again_after_ack: false,
            ack: None,
            per_day: Default::default(),
        };
        let v = payload(&item, "host<@U123>");
        let text = v["text"].as_str().unwrap();
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert!(text.contains("&lt;!channel&gt;"), "{text}");
        assert!(text.contains("host&lt;@U123&gt;"), "{text}");
        assert!(text.contains("&amp; co"), "{text}");
        // The JSON fields carry the names as they are (JSON needs no more).
        assert_eq!(v["containers"][0], "<!channel>");
    }
}

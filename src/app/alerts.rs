//! Alerts on new secrets: the findings grouped by secret, each new one not alerted before sent to
//! the webhook (`sidecar report alert`, and `sidecar run` every `run.alert_seconds`).
use anyhow::Result;

use crate::findings::group::{Filter, Grouper};
use crate::findings::read::fold_findings_dir;
use crate::findings::triage::Triage;

/// Read the findings and send an alert for each new secret not alerted before.
pub fn alert_once(state_dir: &std::path::Path, hook: &crate::findings::alert::Webhook) -> Result<(usize, Vec<String>)> {
    let filter = Filter::default();
    let (g, _) = fold_findings_dir(
        &crate::state::StateDir::new(state_dir).findings(),
        || Grouper::new(&filter),
        |g, r| g.add(r),
    )?;
    let items = g.finish(&Triage::load(state_dir)?);
    Ok(crate::findings::alert::send_new(&items, hook, state_dir)?)
}

//! Findings as records on disk and the services around them: the one record schema
//! ([`record::FindingRecord`]), the guard's append log with its rotation and fold ([`sink`]), the
//! aggregates journal and recording budget of a flood ([`journal`], [`budget`]), reading records
//! back and grouping them per secret ([`read`], [`group`]), triage ([`triage`]), webhook alerts
//! ([`alert`]), fleet shipping ([`fleet`]) and the audit stream the report shows beside them
//! ([`audit_stream`]). No output format lives here (see `crate::render`); nothing here holds a
//! secret: records carry only rule, location, fingerprint and masked preview.
pub mod alert;
pub mod audit_stream;
pub mod budget;
pub mod fleet;
pub mod group;
pub mod journal;
pub mod read;
pub mod record;
pub mod sink;
pub mod triage;

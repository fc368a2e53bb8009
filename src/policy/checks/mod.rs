//! The checks, one function per check, each a pure function of gathered facts returning a
//! [`Verdict`](super::Verdict): [`container`] over [`ContainerFacts`](super::container::ContainerFacts),
//! [`daemon`] over [`DaemonFacts`](super::daemon::DaemonFacts), [`host`] over
//! [`HostFacts`](super::host::HostFacts).
//!
//! Each module runs its checks from one table of `(CheckId, fn)` in report order, so the order of
//! the results is the table's and every result's severity and fix come from the catalogue
//! ([`CHECKS`](super::CHECKS)). Every catalogue id is in exactly one table (tested).
pub mod container;
pub mod daemon;
pub mod host;

#[cfg(test)]
mod tests {
    use super::super::CheckId;

    #[test]
    fn every_catalogue_id_is_run_by_exactly_one_table() {
        let mut run: Vec<CheckId> = super::container::ids()
            .chain(super::daemon::ids())
            .chain(super::host::ids())
            .collect();
        run.sort();
        assert_eq!(run, CheckId::ALL, "an id is missing from the tables, or in two");
    }
}

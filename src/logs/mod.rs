//! Docker's json-file logs: the line codec and the streaming scanner.
pub mod jsonfile;
pub mod masking;
pub mod scan;

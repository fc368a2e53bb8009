//! Docker's json-file logs: the line codec and the streaming scanner.
pub mod checkpoint;
pub mod containers;
pub mod guard;
pub mod jsonfile;
pub mod masking;
pub mod rotate;
pub mod scan;
pub mod watch;

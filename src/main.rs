//! `sidecar`: the thin binary around the library.
fn main() -> std::process::ExitCode {
    sidecar::cli::run()
}

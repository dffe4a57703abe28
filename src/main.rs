use std::process::ExitCode;

fn main() -> ExitCode {
    // SIGINT/SIGTERM/SIGHUP outside a sandbox run remove the staging dir and temp outputs.
    oci_slim::sys::cleanup::install();
    oci_slim::cli::main()
}

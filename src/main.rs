use std::process::ExitCode;

fn main() -> ExitCode {
    oci_slim::cli::main()
}

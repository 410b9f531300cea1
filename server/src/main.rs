use std::process::ExitCode;

fn main() -> ExitCode {
    umbra::cli::main()
}

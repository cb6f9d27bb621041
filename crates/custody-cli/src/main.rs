//! `custody`: the server (`custody server`) and the command-line client
//! (everything else) in one binary.
//!
//! Exit codes: 0 success; 1 non-compliant (assert, evaluate, parse); 2 invalid
//! input or usage; 3 server, network or authentication trouble.

// `println!` and `print!` for the whole CLI: they write through
// `output::write_stdout`, so output into a closed pipe (`custody ... | head`)
// ends quietly instead of panicking, and the command keeps its exit code.
// Defined before the modules so that they see these, not std's.
macro_rules! println {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

macro_rules! print {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

mod attach;
mod ci;
mod cli;
mod commands;
mod config;
mod fail;
mod git;
mod markdown;
mod output;
mod rego;
mod reports;

use std::collections::BTreeSet;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    // A sandbox worker of a running server (see custody-sandbox): nothing
    // of the command line is read, no runtime is started.
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(custody_sandbox::worker::ARG))
    {
        custody_sandbox::worker::main();
    }
    let args: Vec<String> = std::env::args().collect();
    let known = known_env_vars();
    if let Err(e) = config::prepare(&args, &known) {
        eprintln!("Error: {e}");
        return ExitCode::from(fail::INPUT);
    }
    // `custody server ...` is parsed without the client's global flags.
    let parsed = if args.get(1).map(String::as_str) == Some("server") {
        Parsed::Server(cli::ServerCli::parse_from(
            std::iter::once("custody server".to_string()).chain(args.iter().skip(2).cloned()),
        ))
    } else {
        Parsed::Client(cli::Cli::parse_from(&args))
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::from(fail::SERVER);
        }
    };
    let work = async {
        match parsed {
            Parsed::Server(s) => commands::server::run(s.args).await,
            Parsed::Client(cli) => commands::run(cli).await,
        }
    };
    let code = match runtime.block_on(work) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {}", fail::message(&e));
            ExitCode::from(fail::code(&e))
        }
    };
    match output::failure() {
        // Output that could not be written for another reason than a
        // reader that went away (a full disk) is a failure of the command.
        Some(e) => {
            eprintln!("Error: cannot write the output: {e}");
            ExitCode::from(fail::SERVER)
        }
        None => code,
    }
}

enum Parsed {
    Server(cli::ServerCli),
    Client(cli::Cli),
}

/// Every `CUSTODY_*` variable a flag reads, so a config file can be checked.
fn known_env_vars() -> BTreeSet<String> {
    fn walk(cmd: &clap::Command, out: &mut BTreeSet<String>) {
        for a in cmd.get_arguments() {
            if let Some(e) = a.get_env() {
                out.insert(e.to_string_lossy().into_owned());
            }
        }
        for s in cmd.get_subcommands() {
            walk(s, out);
        }
    }
    let mut out = BTreeSet::new();
    walk(&cli::Cli::command(), &mut out);
    out
}

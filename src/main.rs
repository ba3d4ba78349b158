//! The `seresnext-serve` command line: parse arguments, dispatch to the
//! library ([`seresnext_serve::cli`] holds each subcommand's flags and run).

use std::process::ExitCode;

use clap::Parser;

use seresnext_serve::cli::{Cli, Command};

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => args.run(),
        Command::Bench(args) => args.run(),
        Command::Classify(args) => args.run(),
    }
}

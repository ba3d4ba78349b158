//! The `seresnext-serve` command line: one `Args` struct per subcommand with
//! its flags, defaults and environment variables, and what the subcommand
//! does with them. `main` only parses and dispatches; the exit codes live
//! beside each subcommand's flags.

pub mod bench;
pub mod classify;
pub mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::model::ModelId;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "HTTP inference service for the Gluon SE-ResNeXt ImageNet classifiers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default config is config/default.toml).
    Serve(serve::Args),
    /// Time in-process forward passes per batch size; one JSON line each.
    Bench(bench::Args),
    /// Classify local image files with no server; one JSON line per image.
    Classify(classify::Args),
}

/// `--model`: an id (gluon_seresnext50_32x4d, …) or a timm name; an unknown
/// one lists the known ids.
fn parse_model(name: &str) -> Result<ModelId, String> {
    ModelId::parse(name).ok_or_else(|| {
        let known: Vec<_> = crate::model::ALL_MODELS
            .iter()
            .map(|id| id.name())
            .collect();
        format!("unknown model {name:?}; known: {}", known.join(", "))
    })
}

/// `--threads`: libtorch intra-op threads for this process; 0 keeps
/// libtorch's default.
fn set_threads(threads: usize) {
    if threads > 0 {
        crate::model::set_intra_op_threads(threads);
    }
}

/// `--threads` applied and `--device` checked, before anything is read: a
/// GPU that is not there is one sentence on stderr and exit code 2 (as for
/// a model that cannot load).
fn engine_setup(
    threads: usize,
    spec: crate::config::DeviceSpec,
) -> Result<crate::model::Device, ExitCode> {
    set_threads(threads);
    crate::model::check_device(spec).map_err(|error| {
        eprintln!("error: {error}");
        ExitCode::from(2)
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}

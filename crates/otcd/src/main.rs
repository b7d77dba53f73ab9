//! The `otcd` binary: parses the command line and hands over to the library crates.

mod allocator;
mod cli;
mod commands;
mod demo;
mod demo_flow;
mod inputs;
mod limits;
mod progress;
mod replicated;
mod sanctions_fetch;
mod sanctions_refresh;
mod server;
mod standby_reads;
mod telemetry;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    allocator::keep_freed_memory();
    let cli = cli::Cli::parse();
    let verbose = cli.verbose || std::env::var("RUST_LOG").is_ok_and(|level| level.contains("debug"));
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // A user's mistake is one line with its causes; the backtrace is for those who ask.
            if verbose {
                eprintln!("error: {error:?}");
            } else {
                eprintln!("error: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(command: cli::CliCommand) -> anyhow::Result<()> {
    match command {
        cli::CliCommand::Verify { data_dir, public_key, export, witness } => {
            let data_dir = if export.is_some() { data_dir.unwrap_or_default() } else { inputs::data_dir(data_dir)? };
            commands::verify(&data_dir, public_key.as_deref(), export.as_deref(), witness.as_deref())
        }
        cli::CliCommand::AuditExport { data_dir, from, to, out } => {
            commands::audit_export(&inputs::data_dir(data_dir)?, &from, &to, &out)
        }
        cli::CliCommand::Report(arguments) => commands::report(*arguments),
        cli::CliCommand::Sanctions { command: cli::SanctionsCommand::Fetch { out, sources } } => {
            commands::sanctions_fetch(&out, sources.as_deref())
        }
        cli::CliCommand::Openapi => {
            println!("{:#}", otcd_http::openapi::document());
            Ok(())
        }
        cli::CliCommand::Sign { key_file, client, method, path, body } => {
            commands::sign(&key_file, client.as_deref(), &method, &path, &body)
        }
        command => {
            telemetry::init();
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(commands::run_server(command))
        }
    }
}

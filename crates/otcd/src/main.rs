//! The `otcd` binary: parses the command line and hands over to the library crates.

mod cli;
mod commands;
mod telemetry;

use clap::Parser;

/// The engine thread allocates what other threads free (journal payloads, replies, snapshots): the system
/// allocator spent about a third of the engine's time in malloc and free on the trade path, mimalloc far less
/// (BENCHMARKS.md, "Execution").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::CliCommand::Verify { data_dir, public_key, export } => {
            commands::verify(&data_dir, public_key.as_deref(), export.as_deref())
        }
        cli::CliCommand::AuditExport { data_dir, from, to, out } => commands::audit_export(&data_dir, &from, &to, &out),
        cli::CliCommand::Report(arguments) => commands::report(*arguments),
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

//! The `otcd` binary: parses the command line and hands over to the library crates.

mod allocator;
mod cli;
mod commands;
mod demo;
mod server;
mod telemetry;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    allocator::keep_freed_memory();
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

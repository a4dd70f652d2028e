//! The `keyway` binary: `serve` runs the server; the other commands administer it over its
//! HTTP API, in the spirit of `az ad` and `kcadm`.

mod client;
mod commands;
mod output;
mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "keyway",
    version,
    about = "Self-hosted identity, data and connection platform for automation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
}

/// Options shared by the administration commands.
#[derive(clap::Args, Clone, Debug)]
pub struct Global {
    /// The administrator profile (written by the server at first start).
    #[arg(
        long,
        env = "KEYWAY_PROFILE",
        default_value = "keyway-data/admin.json",
        global = true
    )]
    pub profile: PathBuf,
    /// Human-readable tables, or JSON for scripts.
    #[arg(long, short = 'o', value_enum, default_value = "table", global = true)]
    pub output: OutputFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Keyway server.
    Serve(serve::ServeArgs),
    /// Walk through seed 002 on a throwaway server: app, secret, application user, role,
    /// connection, flow, a row, the run, the audit, then DEV → TEST through a solution.
    Demo(commands::demo::DemoArgs),
    /// Tenants and their signing keys.
    Tenant {
        #[command(flatten)]
        global: Global,
        #[command(subcommand)]
        command: commands::tenant::TenantCommand,
    },
    /// App registrations, their secrets and certificates.
    App {
        #[command(flatten)]
        global: Global,
        #[command(subcommand)]
        command: commands::app::AppCommand,
    },
    /// Audit trails.
    Audit {
        #[command(flatten)]
        global: Global,
        #[command(subcommand)]
        command: commands::audit::AuditCommand,
    },
    /// Connections: stored credentials that flows use to act as an identity.
    Connection {
        #[command(flatten)]
        global: Global,
        #[command(subcommand)]
        command: commands::connection::ConnectionCommand,
    },
    /// Connectors and their parameter sets.
    Connector {
        #[command(flatten)]
        global: Global,
        #[command(subcommand)]
        command: commands::connection::ConnectorCommand,
    },
    /// Environments (Dataverse-style record stores).
    Env {
        #[command(flatten)]
        global: Global,
        #[command(subcommand)]
        command: commands::env::EnvCommand,
    },
    /// Cloud flows: definitions, runs and their history.
    Flow {
        #[command(flatten)]
        global: Global,
        #[command(subcommand)]
        command: commands::flow::FlowCommand,
    },
    /// Solutions: export one environment's components, import them into another (ALM).
    Solution {
        #[command(flatten)]
        global: Global,
        #[command(subcommand)]
        command: commands::solution::SolutionCommand,
    },
    /// Flow Service organizations and their sandboxes.
    Flowservice {
        #[command(flatten)]
        global: Global,
        #[command(subcommand)]
        command: commands::flowservice::FlowServiceCommand,
    },
    /// The master key that seals every stored secret, and its rotation.
    Keys {
        #[command(flatten)]
        global: Global,
        #[command(subcommand)]
        command: commands::keys::KeysCommand,
    },
    /// Service principals and their roles.
    Sp {
        #[command(flatten)]
        global: Global,
        #[command(subcommand)]
        command: commands::sp::SpCommand,
    },
    /// Users (people).
    User {
        #[command(flatten)]
        global: Global,
        #[command(subcommand)]
        command: commands::user::UserCommand,
    },
    /// Access tokens.
    Token {
        #[command(flatten)]
        global: Global,
        #[command(subcommand)]
        command: commands::token::TokenCommand,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Demo(args) => commands::demo::run(args).await,
            Command::Tenant { global, command } => commands::tenant::run(&global, command).await,
            Command::App { global, command } => commands::app::run(&global, command).await,
            Command::Connection { global, command } => {
                commands::connection::run(&global, command).await
            }
            Command::Connector { global, command } => {
                commands::connection::connectors(&global, command).await
            }
            Command::Env { global, command } => commands::env::run(&global, command).await,
            Command::Audit { global, command } => commands::audit::run(&global, command).await,
            Command::Flow { global, command } => commands::flow::run(&global, command).await,
            Command::Solution { global, command } => {
                commands::solution::run(&global, command).await
            }
            Command::Flowservice { global, command } => {
                commands::flowservice::run(&global, command).await
            }
            Command::Keys { global, command } => commands::keys::run(&global, command).await,
            Command::Sp { global, command } => commands::sp::run(&global, command).await,
            Command::User { global, command } => commands::user::run(&global, command).await,
            Command::Token { global, command } => commands::token::run(&global, command).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

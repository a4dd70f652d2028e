//! `keyway keys …`: the master key that seals everything else, and its rotation.

use clap::Subcommand;
use keyway_core::wire::{KeyRotation, KeyStatus, MasterKeyView};
use reqwest::Method;

use crate::client::Client;
use crate::output::{self, date};
use crate::{Global, OutputFormat};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Show the current master key, the data keys and how many values each seals (ids only).
    Status,
    /// Make a new master key and re-wrap data keys, signing keys and server secrets under it;
    /// secrets themselves are not touched and nothing stops working meanwhile. With
    /// KEYWAY_MASTER_KEY, first restart with the new key there and the old one in
    /// KEYWAY_MASTER_KEY_PREVIOUS, then run this.
    Rotate,
}

fn master_rows(keys: &[MasterKeyView]) -> Vec<Vec<String>> {
    keys.iter()
        .map(|k| {
            vec![
                k.id.clone(),
                if k.current {
                    "current".into()
                } else if k.held {
                    "retired".into()
                } else {
                    "missing".into()
                },
                k.data_keys.to_string(),
                k.signing_keys.to_string(),
                k.server_secrets.to_string(),
            ]
        })
        .collect()
}

const MASTER_HEADERS: [&str; 5] = [
    "MASTER KEY",
    "STATUS",
    "DATA KEYS",
    "SIGNING KEYS",
    "SERVER SECRETS",
];

pub async fn run(global: &Global, cmd: KeysCommand) -> anyhow::Result<()> {
    let mut c = Client::new(global)?;
    match cmd {
        KeysCommand::Status => {
            let status: KeyStatus = c.get("/v1.0/keys").await?;
            if global.output == OutputFormat::Json {
                return output::show(global.output, &status, &[], vec![]);
            }
            println!(
                "Current master key: {} (from {})\n",
                status.current_master_key_id, status.source
            );
            output::table(&MASTER_HEADERS, master_rows(&status.master_keys));
            println!();
            output::table(
                &["DATA KEY", "STATUS", "WRAPPED BY", "SECRETS", "CREATED"],
                status
                    .data_keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.id.clone(),
                            if k.current { "current" } else { "" }.into(),
                            k.wrapped_by.clone(),
                            k.secrets.to_string(),
                            date(&k.created_date_time),
                        ]
                    })
                    .collect(),
            );
        }
        KeysCommand::Rotate => {
            let r: KeyRotation = c
                .send(Method::POST, "/v1.0/keys/rotate", &serde_json::json!({}))
                .await?;
            if global.output == OutputFormat::Json {
                return output::show(global.output, &r, &[], vec![]);
            }
            println!(
                "Master key {} replaces {}; re-wrapped {} data keys, {} signing keys, {} server secrets.",
                r.current_master_key_id,
                r.previous_master_key_id,
                r.rewrapped.data_keys,
                r.rewrapped.signing_keys,
                r.rewrapped.server_secrets
            );
            if !r.removed_master_keys.is_empty() {
                println!(
                    "Removed from master.key (nothing sealed under them): {}",
                    r.removed_master_keys.join(", ")
                );
            }
            for k in r.master_keys.iter().filter(|k| !k.current) {
                let n = k.data_keys + k.signing_keys + k.server_secrets;
                if n == 0 {
                    println!(
                        "Nothing is sealed under {} any more: drop it from KEYWAY_MASTER_KEY_PREVIOUS.",
                        k.id
                    );
                } else {
                    println!("{} values are still sealed under {}.", n, k.id);
                }
            }
            println!();
            output::table(&MASTER_HEADERS, master_rows(&r.master_keys));
        }
    }
    Ok(())
}

//! `keyway audit verify ENV`: walk an environment's audit hash chain.

use anyhow::{Context, bail};
use clap::Subcommand;
use keyway_core::wire::{AuditVerification, EnvironmentView};

use crate::Global;
use crate::client::Client;
use crate::output;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check that no audit row was edited, removed or reordered; fails when one was.
    Verify { env: String },
}

pub async fn run(global: &Global, cmd: AuditCommand) -> anyhow::Result<()> {
    let mut c = Client::new(global)?;
    let AuditCommand::Verify { env } = cmd;
    let list: Vec<EnvironmentView> = c.list("/v1.0/environments").await?;
    let e = list
        .into_iter()
        .find(|e| e.name.eq_ignore_ascii_case(&env) || e.id.to_string() == env.to_ascii_lowercase())
        .with_context(|| format!("no environment '{env}' in this tenant"))?;
    let v: AuditVerification = c
        .get(&format!("/v1.0/environments/{}/audit/verify", e.id))
        .await?;
    output::pairs(
        global.output,
        &v,
        vec![
            ("environment", v.environment.clone()),
            ("rows", v.rows.to_string()),
            ("intact", v.intact.to_string()),
            (
                "firstBrokenRow",
                v.first_broken_row
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
            ),
        ],
    )?;
    if !v.intact {
        bail!(
            "the audit trail of {} was tampered with: row {} (or the rows after it) no longer match the chain",
            v.environment,
            v.first_broken_row.unwrap_or_default()
        );
    }
    Ok(())
}

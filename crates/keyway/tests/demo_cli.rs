//! `keyway demo` through the real binary: the walkthrough runs to its end, and what it printed is
//! what the server holds — restarted on the demo's data directory, the CLI finds the flow's runs
//! in DEV and in TEST (promoted there through the solution), each acting as the application user.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};

use serde_json::Value;

mod common;

use common::{BIN, json, serve};

fn value_of<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no '{label}' line in:\n{out}"))
}

#[test]
fn the_demo_walks_through_seed_002_and_promotes_to_test() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let out = Command::new(BIN)
        .args(["demo", "--exit", "--data-dir"])
        .arg(&data)
        .env("KEYWAY_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "App registration",
        "Client secret",
        "least-privilege role",
        "Connected",
        "A row added in DEV",
        "the flow's run         Succeeded",
        "connection used        sp-dev",
        "connection used        sp-test",
        "flow                   off",
        "flow                   on",
        "audit history names the application user",
        "Export the solution",
        "Import into TEST",
        "Done in",
    ] {
        assert!(stdout.contains(step), "'{step}' missing from:\n{stdout}");
    }
    // The secret is printed once, by the step that creates it, and once in the summary.
    let secret = value_of(&stdout, "secret ");
    assert!(secret.len() >= 32, "{stdout}");
    assert_eq!(stdout.matches(secret).count(), 2, "{stdout}");

    // The deployment settings file the demo wrote has pac's shape, filled for TEST.
    let settings: Value =
        serde_json::from_slice(&std::fs::read(value_of(&stdout, "settings file")).unwrap())
            .unwrap();
    let refs = settings["ConnectionReferences"].as_array().unwrap();
    assert_eq!(refs.len(), 1, "{settings}");
    assert!(!refs[0]["ConnectionId"].as_str().unwrap().is_empty());
    assert!(settings["EnvironmentVariables"].is_array(), "{settings}");

    // Restart on the demo's data: the runs the demo showed are there, in both environments.
    let _server = serve(&data, &[]);
    let profile = data.join("admin.json");
    let user_of = |env: &str| {
        let runs = json(
            &profile,
            &["flow", "runs", env, "Add a contact for each new account"],
        );
        let runs = runs.as_array().cloned().unwrap_or_default();
        assert_eq!(runs.len(), 1, "{env}: {runs:?}");
        assert_eq!(runs[0]["status"], "Succeeded", "{env}: {runs:?}");
    };
    user_of("dev");
    user_of("test");
}

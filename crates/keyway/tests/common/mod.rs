//! What the CLI tests share: the real binary, a server started on a data directory, and the
//! CLI run against its administrator profile.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_keyway");

/// A `keyway serve` child process, killed when dropped.
pub struct Server {
    pub child: Child,
    /// The URL the server announced.
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `keyway serve` on `dir` (a free port, `extra` flags) and wait until it listens.
pub fn serve(dir: &Path, extra: &[&str]) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env("KEYWAY_LOG", "warn")
        .stderr(Stdio::inherit());
    start(cmd)
}

/// Spawn a prepared `keyway serve` command and wait until it announces where it listens.
pub fn start(mut cmd: Command) -> Server {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("Keyway listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server did not announce itself");
    Server { child, base }
}

/// Run the CLI with `profile`: (success, stdout, stderr).
pub fn keyway(profile: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("KEYWAY_PROFILE", profile)
        .env_remove("KEYWAY_CA")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Run the CLI, which must succeed: its stdout.
pub fn ok(profile: &Path, args: &[&str]) -> String {
    let (success, out, err) = keyway(profile, args);
    assert!(success, "keyway {args:?} failed: {err}");
    out
}

/// Run the CLI with `--output json`, which must succeed: the JSON it printed.
pub fn json(profile: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    serde_json::from_str(&ok(profile, &all)).unwrap()
}

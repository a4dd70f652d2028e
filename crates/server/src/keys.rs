//! The master key ring: from `KEYWAY_MASTER_KEY` (base64 of 32 bytes) or from `master.key` in the
//! data directory, made at first start with mode 0600. It seals signing keys and server secrets.

use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyway_crypto::seal::{KeyRing, MasterKey};
use serde::{Deserialize, Serialize};

use crate::files::write_private;

#[derive(Serialize, Deserialize)]
struct KeyFile {
    current: String,
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
struct KeyEntry {
    id: String,
    key: String,
}

pub fn load_key_ring(data_dir: &Path, from_env: Option<&str>) -> anyhow::Result<KeyRing> {
    if let Some(b64) = from_env {
        let bytes = STANDARD
            .decode(b64.trim())
            .context("KEYWAY_MASTER_KEY must be base64 of 32 random bytes")?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
        let id = format!("env-{}", hex_prefix(digest.as_ref()));
        return Ok(KeyRing::new(MasterKey::new(id, &bytes)?, vec![]));
    }
    let path = data_dir.join("master.key");
    if !path.exists() {
        let bytes = keyway_crypto::random::bytes::<32>();
        let id = format!("mk-{}", hex_prefix(&keyway_crypto::random::bytes::<4>()));
        let file = KeyFile {
            current: id.clone(),
            keys: vec![KeyEntry {
                id,
                key: STANDARD.encode(bytes),
            }],
        };
        write_private(&path, serde_json::to_string_pretty(&file)?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let file: KeyFile = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("{} is not a Keyway key file", path.display()))?;
    let mut current = None;
    let mut older = Vec::new();
    for entry in &file.keys {
        let bytes = STANDARD
            .decode(&entry.key)
            .with_context(|| format!("key '{}' in {} is not base64", entry.id, path.display()))?;
        let key = MasterKey::new(entry.id.clone(), &bytes)?;
        if entry.id == file.current {
            current = Some(key);
        } else {
            older.push(key);
        }
    }
    let current = current.with_context(|| {
        format!(
            "{}: the current key '{}' is not listed",
            path.display(),
            file.current
        )
    })?;
    Ok(KeyRing::new(current, older))
}

fn hex_prefix(b: &[u8]) -> String {
    b.iter().take(4).map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_made_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_key_ring(dir.path(), None).unwrap();
        let b = load_key_ring(dir.path(), None).unwrap();
        assert_eq!(a.current_id(), b.current_id());
        let sealed = a.seal(b"x", b"").unwrap();
        assert_eq!(b.open(&sealed, b"").unwrap().as_slice(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn env_key_must_be_32_bytes() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_key_ring(dir.path(), Some("c2hvcnQ=")).is_err());
        let good = STANDARD.encode([5u8; 32]);
        assert!(
            load_key_ring(dir.path(), Some(&good))
                .unwrap()
                .current_id()
                .starts_with("env-")
        );
    }
}

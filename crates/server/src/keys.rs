//! The master key ring: from `KEYWAY_MASTER_KEY` (base64 of 32 bytes, with older keys still
//! accepted for opening from `KEYWAY_MASTER_KEY_PREVIOUS`) or from `master.key` in the data
//! directory, made at first start with mode 0600. It wraps the data keys that seal secrets, and
//! seals signing keys and server secrets. The ring in memory is swapped, not mutated, when a
//! rotation writes a new key, so readers never wait on a rotation.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyway_crypto::CryptoError;
use keyway_crypto::seal::{KeyRing, MasterKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::files::write_private;

pub const KEY_FILE: &str = "master.key";

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

/// Where the master keys come from, which decides how a rotation makes a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `master.key`: a rotation writes a new key into it.
    File(PathBuf),
    /// `KEYWAY_MASTER_KEY`: the operator sets a new key (and the old one as previous).
    Environment,
}

/// A loaded ring and the ids it holds, current first.
struct Loaded {
    ring: Arc<KeyRing>,
    ids: Vec<String>,
}

/// The master keys a running server holds, swappable as a whole.
pub struct MasterKeys {
    loaded: RwLock<Loaded>,
    source: KeySource,
    /// One rotation at a time on this node.
    pub rotation: tokio::sync::Mutex<()>,
}

impl MasterKeys {
    /// The ring as it is now (rotations swap in a new one; this one stays valid to use).
    pub fn ring(&self) -> Arc<KeyRing> {
        match self.loaded.read() {
            Ok(l) => l.ring.clone(),
            Err(poisoned) => poisoned.into_inner().ring.clone(),
        }
    }

    /// The ids of every key held, the current one first.
    pub fn ids(&self) -> Vec<String> {
        match self.loaded.read() {
            Ok(l) => l.ids.clone(),
            Err(poisoned) => poisoned.into_inner().ids.clone(),
        }
    }

    pub fn current_id(&self) -> String {
        self.ring().current_id().to_string()
    }

    pub fn source(&self) -> &KeySource {
        &self.source
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.ring().seal(plaintext, aad)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.ring().open(sealed, aad)
    }

    fn swap(&self, (ring, ids): (KeyRing, Vec<String>)) {
        let next = Loaded {
            ring: Arc::new(ring),
            ids,
        };
        match self.loaded.write() {
            Ok(mut l) => *l = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    /// File keys only: write a new current key into `master.key`, keeping every older key,
    /// and hold it from now on. Nothing in the database has changed yet, so a crash after
    /// this loses nothing: the next start holds old and new keys alike.
    pub fn add_new_current(&self) -> anyhow::Result<String> {
        let KeySource::File(path) = &self.source else {
            anyhow::bail!(
                "the master key comes from KEYWAY_MASTER_KEY: set a new one there (with the old one in KEYWAY_MASTER_KEY_PREVIOUS) and restart"
            );
        };
        let mut file = read_file(path)?;
        let id = new_file_key_id(&file);
        file.keys.insert(
            0,
            KeyEntry {
                id: id.clone(),
                key: STANDARD.encode(keyway_crypto::random::bytes::<32>()),
            },
        );
        file.current = id.clone();
        write_private(path, serde_json::to_string_pretty(&file)?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        self.swap(ring_of(path, &file)?);
        Ok(id)
    }

    /// File keys only: remove `retired` (never the current key) from `master.key` and from
    /// the ring held. Callers pass only keys nothing is sealed under any more.
    pub fn remove(&self, retired: &[String]) -> anyhow::Result<()> {
        let KeySource::File(path) = &self.source else {
            return Ok(());
        };
        let mut file = read_file(path)?;
        let current = file.current.clone();
        file.keys
            .retain(|k| k.id == current || !retired.contains(&k.id));
        write_private(path, serde_json::to_string_pretty(&file)?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        self.swap(ring_of(path, &file)?);
        Ok(())
    }
}

/// The associated data of a server-wide secret, by name.
pub fn server_secret_aad(name: &str) -> Vec<u8> {
    format!("server-secret:{name}").into_bytes()
}

/// Load the master keys: from the environment when `from_env` is given (with `previous` keys
/// accepted for opening), else from `master.key`, made now if absent.
pub fn load(
    data_dir: &Path,
    from_env: Option<&str>,
    previous: &[String],
) -> anyhow::Result<MasterKeys> {
    let (loaded, source) = match from_env {
        Some(b64) => {
            let current = env_key(b64, "KEYWAY_MASTER_KEY")?;
            let mut ids = vec![current.id.clone()];
            let mut older = Vec::new();
            for p in previous {
                let k = env_key(p, "KEYWAY_MASTER_KEY_PREVIOUS")?;
                if !ids.contains(&k.id) {
                    ids.push(k.id.clone());
                    older.push(k);
                }
            }
            ((KeyRing::new(current, older), ids), KeySource::Environment)
        }
        None => {
            if !previous.is_empty() {
                anyhow::bail!(
                    "KEYWAY_MASTER_KEY_PREVIOUS is only read with KEYWAY_MASTER_KEY; with master.key, rotate with `keyway keys rotate`"
                );
            }
            let path = data_dir.join(KEY_FILE);
            if !path.exists() {
                let file = KeyFile {
                    current: String::new(),
                    keys: vec![],
                };
                let id = new_file_key_id(&file);
                let file = KeyFile {
                    current: id.clone(),
                    keys: vec![KeyEntry {
                        id,
                        key: STANDARD.encode(keyway_crypto::random::bytes::<32>()),
                    }],
                };
                write_private(&path, serde_json::to_string_pretty(&file)?.as_bytes())
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            let file = read_file(&path)?;
            (ring_of(&path, &file)?, KeySource::File(path))
        }
    };
    let (ring, ids) = loaded;
    Ok(MasterKeys {
        loaded: RwLock::new(Loaded {
            ring: Arc::new(ring),
            ids,
        }),
        source,
        rotation: tokio::sync::Mutex::new(()),
    })
}

fn env_key(b64: &str, var: &str) -> anyhow::Result<MasterKey> {
    let bytes = Zeroizing::new(
        STANDARD
            .decode(b64.trim())
            .with_context(|| format!("{var} must be base64 of 32 random bytes"))?,
    );
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
    let id = format!("env-{}", hex_prefix(digest.as_ref()));
    MasterKey::new(id, &bytes).with_context(|| format!("{var} must be 32 bytes"))
}

fn read_file(path: &Path) -> anyhow::Result<KeyFile> {
    serde_json::from_slice(
        &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("{} is not a Keyway key file", path.display()))
}

fn new_file_key_id(file: &KeyFile) -> String {
    loop {
        let id = format!("mk-{}", hex_prefix(&keyway_crypto::random::bytes::<4>()));
        if !file.keys.iter().any(|k| k.id == id) {
            return id;
        }
    }
}

fn ring_of(path: &Path, file: &KeyFile) -> anyhow::Result<(KeyRing, Vec<String>)> {
    let mut current = None;
    let mut older = Vec::new();
    let mut ids = vec![file.current.clone()];
    for entry in &file.keys {
        let bytes =
            Zeroizing::new(STANDARD.decode(&entry.key).with_context(|| {
                format!("key '{}' in {} is not base64", entry.id, path.display())
            })?);
        let key = MasterKey::new(entry.id.clone(), &bytes)?;
        if entry.id == file.current {
            current = Some(key);
        } else {
            ids.push(entry.id.clone());
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
    Ok((KeyRing::new(current, older), ids))
}

fn hex_prefix(b: &[u8]) -> String {
    b.iter().take(4).map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_key_ring(dir: &Path, from_env: Option<&str>) -> anyhow::Result<Arc<KeyRing>> {
        load(dir, from_env, &[]).map(|k| k.ring())
    }

    fn file_ids(dir: &Path) -> (String, Vec<String>) {
        let f = read_file(&dir.join(KEY_FILE)).unwrap();
        (f.current, f.keys.into_iter().map(|k| k.id).collect())
    }

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
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
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
        assert!(!dir.path().join(KEY_FILE).exists());
    }

    #[test]
    fn previous_env_keys_open_but_do_not_seal() {
        let dir = tempfile::tempdir().unwrap();
        let old = STANDARD.encode([1u8; 32]);
        let new = STANDARD.encode([2u8; 32]);
        let before = load(dir.path(), Some(&old), &[]).unwrap();
        let sealed = before.seal(b"x", b"a").unwrap();
        let after = load(dir.path(), Some(&new), std::slice::from_ref(&old)).unwrap();
        assert_eq!(after.open(&sealed, b"a").unwrap().as_slice(), b"x");
        assert_ne!(after.current_id(), before.current_id());
        assert_eq!(after.ids(), vec![after.current_id(), before.current_id()]);
        assert!(after.add_new_current().is_err());
        assert!(load(dir.path(), None, &[old]).is_err());
    }

    #[test]
    fn a_new_file_key_keeps_the_old_ones_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let keys = load(dir.path(), None, &[]).unwrap();
        let first = keys.current_id();
        let held_before = keys.ring();
        let sealed = keys.seal(b"x", b"a").unwrap();

        let second = keys.add_new_current().unwrap();
        assert_ne!(first, second);
        assert_eq!(keys.current_id(), second);
        // The ring taken before the swap still works; the new one opens the old value.
        assert_eq!(held_before.current_id(), first);
        assert_eq!(keys.open(&sealed, b"a").unwrap().as_slice(), b"x");
        assert_eq!(
            file_ids(dir.path()),
            (second.clone(), vec![second.clone(), first.clone()])
        );
        // A restart right now (a crash before re-sealing) holds both keys.
        let restarted = load(dir.path(), None, &[]).unwrap();
        assert_eq!(restarted.current_id(), second);
        assert_eq!(restarted.open(&sealed, b"a").unwrap().as_slice(), b"x");

        keys.remove(&[first.clone(), second.clone()]).unwrap();
        assert_eq!(file_ids(dir.path()), (second.clone(), vec![second.clone()]));
        assert_eq!(keys.ids(), vec![second]);
        assert!(matches!(
            keys.open(&sealed, b"a"),
            Err(CryptoError::UnknownKey(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

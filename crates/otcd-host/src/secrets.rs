//! The desk master key and sealed HMAC secrets.
//!
//! HMAC secrets must be known to the server to verify signatures, but must never sit in plain text in the
//! journal or snapshots. They are sealed with ChaCha20-Poly1305 under a 256-bit master key kept in
//! `DATA_DIR/master.key` (mode 0600); the key id is bound as associated data so a sealed secret cannot be
//! moved to another key.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

const MASTER_KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
/// Bytes of randomness in a generated HMAC secret (shown to the user as hex).
const HMAC_SECRET_BYTES: usize = 32;

pub struct MasterKey {
    cipher: ChaCha20Poly1305,
    /// HMAC-SHA256 key for browser session tokens, derived from the master key (never stored).
    session_key: [u8; 32],
}

impl MasterKey {
    /// Reads the master key, creating it (0600, synced) when the file does not exist.
    pub fn load_or_create(path: &Path) -> io::Result<Self> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => create_key_file(path)?,
            Err(error) => return Err(error),
        };
        let mode = fs::metadata(path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "master key is readable by others; setting 0600");
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        }
        if bytes.len() != MASTER_KEY_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{} is not a 32-byte key", path.display())));
        }
        Ok(Self { cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)), session_key: derive_session_key(&bytes) })
    }

    /// The key that signs session tokens (`POST /v1/sessions`): HMAC-SHA256(master key, a fixed label), so a
    /// token can be checked by any process holding the master key and by nothing else.
    pub fn session_key(&self) -> &[u8; 32] {
        &self.session_key
    }

    pub fn seal(&self, key_id: &str, secret: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret, aad: key_id.as_bytes() })
            .expect("sealing in memory cannot fail");
        [nonce.as_slice(), &ciphertext].concat()
    }

    /// `None` when the sealed bytes were not produced by this master key for this key id.
    pub fn open(&self, key_id: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() <= NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: key_id.as_bytes() }).ok()
    }
}

fn derive_session_key(master: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(master).expect("any key length");
    mac.update(b"otcd session tokens v1");
    mac.finalize().into_bytes().into()
}

fn create_key_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; MASTER_KEY_BYTES];
    rand::thread_rng().fill_bytes(&mut bytes);
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    Ok(bytes)
}

/// A new HMAC secret: 32 random bytes as lowercase hex. Clients key HMAC-SHA256 with the UTF-8 bytes of this text.
pub fn new_hmac_secret() -> String {
    let mut bytes = [0u8; HMAC_SECRET_BYTES];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A new key id: `k_` and 20 random hex digits.
pub fn new_key_id() -> String {
    let mut bytes = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("k_{}", hex::encode(bytes))
}

/// Writes `contents` to `path` with mode 0600 atomically (temporary file, sync, rename).
pub fn write_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let temporary = path.with_extension("tmp");
    let _ = fs::remove_file(&temporary);
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&temporary, path)?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_the_same_key_and_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let key = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let sealed = key.seal("k_1", b"secret");
        assert!(!sealed.windows(6).any(|window| window == b"secret"));
        assert_eq!(key.open("k_1", &sealed).as_deref(), Some(b"secret".as_slice()));
        assert_eq!(key.open("k_2", &sealed), None);
        let reloaded = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(reloaded.open("k_1", &sealed).as_deref(), Some(b"secret".as_slice()));
        let other = MasterKey::load_or_create(&dir.path().join("other.key")).unwrap();
        assert_eq!(other.open("k_1", &sealed), None);
    }
}

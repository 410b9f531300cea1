//! Encryption at rest for TOTP secrets, which must be readable to verify codes and so cannot
//! be hashed: AES-256-GCM with a random 96-bit nonce per encryption, the nonce stored in front
//! of the ciphertext. The owner's id is the associated data, so a ciphertext copied onto
//! another user's row does not decrypt.
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand::TryRng;

const NONCE_LEN: usize = 12;
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretBoxError {
    #[error("the operating system's random number generator failed: {0}")]
    Random(#[from] rand::rngs::SysError),
    #[error("encryption failed")]
    Encrypt,
    /// Wrong key, tampered row, or a row of another user.
    #[error("a stored secret does not decrypt with the configured key")]
    Decrypt,
}

pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl SecretBox {
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self {
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key)),
        }
    }

    pub fn seal(&self, plaintext: &[u8], associated: &[u8]) -> Result<Vec<u8>, SecretBoxError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::SysRng.try_fill_bytes(&mut nonce)?;
        let ciphertext = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: associated,
                },
            )
            .map_err(|_| SecretBoxError::Encrypt)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    pub fn open(&self, sealed: &[u8], associated: &[u8]) -> Result<Vec<u8>, SecretBoxError> {
        if sealed.len() < NONCE_LEN {
            return Err(SecretBoxError::Decrypt);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SecretBoxError::Decrypt)?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: associated,
                },
            )
            .map_err(|_| SecretBoxError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_owner() {
        let sealed_box = SecretBox::new(&[7u8; KEY_LEN]);
        let sealed = sealed_box.seal(b"secret", b"user-1").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(sealed_box.open(&sealed, b"user-1").unwrap(), b"secret");
        assert!(sealed_box.open(&sealed, b"user-2").is_err());
        assert!(
            SecretBox::new(&[8u8; KEY_LEN])
                .open(&sealed, b"user-1")
                .is_err()
        );
        assert!(sealed_box.open(&sealed[..5], b"user-1").is_err());
    }

    #[test]
    fn each_encryption_uses_a_new_nonce() {
        let sealed_box = SecretBox::new(&[7u8; KEY_LEN]);
        assert_ne!(
            sealed_box.seal(b"s", b"u").unwrap(),
            sealed_box.seal(b"s", b"u").unwrap()
        );
    }
}

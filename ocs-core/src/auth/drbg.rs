//! A deterministic random bit generator for secrets (NTLM client
//! challenges, session keys): HMAC-SHA256 in counter mode over caller
//! supplied entropy. The core never asks the OS for randomness; the driver
//! seeds this from the OS, tests from constants.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Secret randomness expanded from 32 bytes of entropy.
#[derive(Clone)]
pub struct SecretRng {
    key: [u8; 32],
    counter: u64,
}

impl std::fmt::Debug for SecretRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretRng(..)")
    }
}

impl SecretRng {
    /// Seeds the generator. Use 32 bytes from the OS in production.
    pub fn new(entropy: [u8; 32]) -> Self {
        SecretRng {
            key: entropy,
            counter: 0,
        }
    }

    /// Fills `out` with output bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(32) {
            self.counter += 1;
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
            mac.update(&self.counter.to_le_bytes());
            let block = mac.finalize().into_bytes();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }

    /// An array of random bytes.
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_distinct() {
        let mut a = SecretRng::new([1; 32]);
        let mut b = SecretRng::new([1; 32]);
        let x: [u8; 40] = a.bytes();
        let y: [u8; 40] = b.bytes();
        assert_eq!(x, y);
        let z: [u8; 40] = a.bytes();
        assert_ne!(x, z);
        let mut c = SecretRng::new([2; 32]);
        assert_ne!(c.bytes::<16>(), SecretRng::new([1; 32]).bytes::<16>());
    }
}

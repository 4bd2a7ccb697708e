//! Seedable randomness for tags, Call-IDs, branch ids and jitter.
//!
//! The core never asks the operating system for randomness: callers seed
//! an [`Rng`] (the driver from the OS, tests from a constant), so runs are
//! reproducible. These values need to be unique, not secret; secrets (NTLM
//! client challenges, session keys) are passed in by the caller.

/// A small, fast, seedable generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator from a seed. Equal seeds give equal sequences.
    pub fn from_seed(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n` > 0; returns 0 for `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            // Multiply-shift keeps the bias far below anything that matters
            // for jitter and identifiers.
            ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
        }
    }

    /// `n` lower-case hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(n);
        let mut bits = 0u64;
        for i in 0..n {
            if i % 16 == 0 {
                bits = self.next_u64();
            }
            s.push(HEX[(bits & 0xf) as usize] as char);
            bits >>= 4;
        }
        s
    }

    /// A From/To tag in the form OC uses (10 hex digits).
    pub fn tag(&mut self) -> String {
        self.hex(10)
    }

    /// A Call-ID in the form OC uses (32 hex digits).
    pub fn call_id(&mut self) -> String {
        self.hex(32)
    }

    /// An RFC 3261 branch id with the magic cookie.
    pub fn branch(&mut self) -> String {
        format!("z9hG4bK{}", self.hex(16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_well_formed() {
        let mut a = Rng::from_seed(7);
        let mut b = Rng::from_seed(7);
        assert_eq!(a.call_id(), b.call_id());
        let t = a.tag();
        assert_eq!(t.len(), 10);
        assert!(t.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(a.branch().starts_with("z9hG4bK"));
        assert_ne!(a.tag(), a.tag());
        for _ in 0..1000 {
            assert!(a.below(5) < 5);
        }
    }
}

//! A seedable RNG for choosing test inputs and filling buffers: splitmix64 (Steele, Lea and Flood,
//! "Fast splittable pseudorandom number generators", 2014). Tiny, fast, with no dependency; not for
//! anything secret. Hand-written rather than `rand`: the tests want the same stream for a seed on
//! every version, which a dependency's minor release may change.

/// splitmix64's state.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (slightly biased for huge `n`; fine for picking cases). `n` must not be 0.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// One of `items`, which must not be empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Fills `buf`, eight bytes per step.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }

    /// `len` bytes (incompressible).
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.fill(&mut v);
        v
    }
}

/// The seed of a randomised test: the environment variable `var` (decimal or 0x-hex) if set, else
/// `default`. Printed, so that a failing run's output says how to replay it.
pub fn seed(var: &str, default: u64) -> u64 {
    let seed = match std::env::var(var) {
        Ok(text) => {
            let t = text.trim();
            match t.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => t.parse(),
            }
            .unwrap_or_else(|_| {
                panic!("{var}={text:?} is not a number (decimal or 0x-prefixed hex)")
            })
        }
        Err(_) => default,
    };
    eprintln!("seed {seed:#x} (replay with {var}={seed:#x})");
    seed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_gives_the_published_sequence() {
        // The first outputs for seed 1234567, as in the reference C implementation's test.
        let mut r = SplitMix64::new(1_234_567);
        let got: Vec<u64> = (0..5).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423,
                4_593_380_528_125_082_431,
                16_408_922_859_458_223_821,
            ]
        );
    }

    #[test]
    fn bytes_fill_every_length() {
        for len in [0, 1, 7, 8, 9, 4097] {
            let mut a = SplitMix64::new(7);
            let mut b = SplitMix64::new(7);
            let bytes = a.bytes(len);
            assert_eq!(bytes.len(), len);
            let mut again = vec![0u8; len];
            b.fill(&mut again);
            assert_eq!(bytes, again);
        }
        assert_ne!(SplitMix64::new(1).bytes(64), SplitMix64::new(2).bytes(64));
    }
}

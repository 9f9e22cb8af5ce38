//! Random identifiers (record ids, API keys, request ids): a leaf module every layer may use.

use rand::Rng;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Random base62 string of `n` characters from the OS-seeded thread RNG.
pub fn random_base62(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n).map(|_| BASE62[rng.gen_range(0..BASE62.len())] as char).collect()
}

//! Random bytes from the operating system's generator.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // aws-lc's generator reads the OS source; a failure there leaves no safe way on.
    if SystemRandom::new().fill(&mut out).is_err() {
        std::process::abort();
    }
    out
}

//! The audit trail's hash chain: each row's hash covers the previous row's hash and the row's
//! own canonical bytes, so an edited, removed or reordered row breaks every hash after it.

use aws_lc_rs::digest;

/// The hash before the first row of a chain.
pub const GENESIS: [u8; 32] = [0u8; 32];

/// SHA-256(previous hash || length-prefixed row bytes).
pub fn chain_hash(previous: &[u8], row: &[u8]) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(previous);
    ctx.update(&(row.len() as u64).to_be_bytes());
    ctx.update(row);
    ctx.finish().as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_depends_on_every_row_and_its_order() {
        let a = chain_hash(&GENESIS, b"row a");
        let b = chain_hash(&a, b"row b");
        assert_ne!(b, chain_hash(&GENESIS, b"row b"), "order matters");
        assert_ne!(
            b,
            chain_hash(&chain_hash(&GENESIS, b"row A"), b"row b"),
            "content matters"
        );
        assert_eq!(b, chain_hash(&chain_hash(&GENESIS, b"row a"), b"row b"));
    }
}

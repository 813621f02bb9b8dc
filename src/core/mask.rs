//! RFC 6455 section 5.3 masking, eight bytes at a time.

/// XORs `buf` with `mask`, where `buf[0]` sits at byte `offset` of the frame
/// payload (so a payload split over several reads unmasks correctly).
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    if mask == [0; 4] {
        return;
    }
    let mut rotated = mask;
    rotated.rotate_left(offset & 3);
    let [a, b, c, d] = rotated;
    let word = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut v = [0u8; 8];
        v.copy_from_slice(chunk);
        let x = u64::from_ne_bytes(v) ^ word;
        chunk.copy_from_slice(&x.to_ne_bytes());
    }
    for (byte, m) in chunks.into_remainder().iter_mut().zip(rotated.iter().cycle()) {
        *byte ^= m;
    }
}

/// Random masking keys, drawn from the OS in blocks of 8 KiB.
pub struct MaskPool {
    pool: Box<[u8; 8192]>,
    pos: usize,
}

impl Default for MaskPool {
    fn default() -> Self {
        MaskPool { pool: Box::new([0; 8192]), pos: 8192 }
    }
}

impl MaskPool {
    pub fn next_key(&mut self) -> [u8; 4] {
        if self.pool.len().saturating_sub(self.pos) < 4 {
            if getrandom::fill(&mut self.pool[..]).is_err() {
                // No OS randomness: fall back to a clock-seeded xorshift rather than fail a send.
                let mut x = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0x9e37_79b9_7f4a_7c15)
                    | 1;
                for b in self.pool.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = x as u8;
                }
            }
            self.pos = 0;
        }
        let key = self.pool.get(self.pos..).and_then(<[u8]>::first_chunk::<4>).copied().unwrap_or_default();
        self.pos = self.pos.saturating_add(4);
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], mask: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= mask[(offset + i) % 4];
        }
    }

    #[test]
    fn matches_bytewise_masking_at_every_offset_and_length() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in 0..40 {
            for offset in 0..8 {
                let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(31)).collect();
                let mut fast = data.clone();
                let mut slow = data.clone();
                apply_mask(&mut fast, mask, offset);
                naive(&mut slow, mask, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn pool_keys_vary() {
        let mut p = MaskPool::default();
        let keys: std::collections::HashSet<[u8; 4]> = (0..5000).map(|_| p.next_key()).collect();
        assert!(keys.len() > 4900);
    }

    #[test]
    fn split_masking_equals_whole() {
        let mask = [1, 2, 3, 4];
        let data: Vec<u8> = (0..100u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, mask, 0);
        let mut parts = data.clone();
        let (a, b) = parts.split_at_mut(13);
        apply_mask(a, mask, 0);
        apply_mask(b, mask, 13);
        assert_eq!(whole, parts);
    }
}

//! Randomness from the operating system (through `ring`): node names, bench cookies, jitter.

use ring::rand::{SecureRandom, SystemRandom};

/// `bytes` random bytes, hex encoded.
pub fn hex(bytes: usize) -> anyhow::Result<String> {
    let mut buffer = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buffer)
        .map_err(|_| anyhow::anyhow!("the operating system's random source failed"))?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

/// A random 64-bit number, for ids that only need to differ (a client session, a room's
/// incarnation); from the clock if the random source fails.
pub fn number() -> u64 {
    let mut bytes = [0u8; 8];
    match SystemRandom::new().fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    }
}

/// A random fraction in [0, 1]; 0 if the random source fails (for jitter, where any value
/// will do).
pub fn fraction() -> f64 {
    let mut bytes = [0u8; 4];
    match SystemRandom::new().fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 0.0,
    }
}

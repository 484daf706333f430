//! Flood control: each user may send bursts, but not more than a steady rate.
//!
//! A token bucket per user: it holds up to `burst` tokens, refills at `rate` per second, and
//! each message takes one. A user typing fast is never throttled; a script sending more than
//! the rate for longer than the burst lasts is, and only that user.

use std::time::{Duration, Instant};

/// The default sustained rate, messages per second.
pub const DEFAULT_RATE: f64 = 20.0;
/// The default burst, messages.
pub const DEFAULT_BURST: f64 = 40.0;

/// One user's allowance.
#[derive(Debug, Clone)]
pub struct Throttle {
    rate: f64,
    burst: f64,
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Instant,
}

impl Throttle {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            updated: now,
        }
    }

    /// Takes a token for one message at `now`: `Ok` if allowed, else how long until the
    /// next message would be.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(DEFAULT_RATE, DEFAULT_BURST, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let start = Instant::now();
        let mut throttle = Throttle::new(20.0, 40.0, start);
        for _ in 0..40 {
            assert!(throttle.take(start).is_ok());
        }
        let wait = throttle.take(start).unwrap_err();
        assert!(
            wait <= Duration::from_millis(50) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // One more token every 50 ms.
        assert!(throttle.take(start + Duration::from_millis(50)).is_ok());
        assert!(throttle.take(start + Duration::from_millis(50)).is_err());
    }

    #[test]
    fn a_sustained_flood_is_cut_to_the_rate() {
        let start = Instant::now();
        let mut throttle = Throttle::new(20.0, 40.0, start);
        // 100 messages per second for 10 seconds.
        let allowed = (0..1000)
            .filter(|i| throttle.take(start + Duration::from_millis(i * 10)).is_ok())
            .count();
        // The burst plus 20 per second, give or take one at the edges.
        assert!((239..=241).contains(&allowed), "{allowed}");
    }

    #[test]
    fn a_fast_typist_is_never_throttled() {
        let start = Instant::now();
        let mut throttle = Throttle::new(20.0, 40.0, start);
        // Five messages a second for a minute.
        for i in 0..300 {
            assert!(throttle
                .take(start + Duration::from_millis(i * 200))
                .is_ok());
        }
    }
}

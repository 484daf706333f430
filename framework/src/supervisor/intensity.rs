//! Restart intensity: at most `intensity` restarts within any `period`.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The restarts of one supervisor within the current period (OTP's `restarts` list).
#[derive(Debug)]
pub(crate) struct RestartBudget {
    intensity: u32,
    period: Duration,
    /// Times of recent restarts, oldest first; entries older than `period` are dropped.
    recent: VecDeque<Instant>,
}

impl RestartBudget {
    pub(crate) fn new(intensity: u32, period: Duration) -> Self {
        Self {
            intensity,
            period,
            recent: VecDeque::new(),
        }
    }

    /// Counts one restart now. False when that makes more than `intensity` restarts within
    /// `period`: the supervisor must give up.
    pub(crate) fn allow_restart(&mut self) -> bool {
        let now = Instant::now();
        self.recent.push_back(now);
        while let Some(&oldest) = self.recent.front() {
            if now.duration_since(oldest) > self.period {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        self.recent.len() <= self.intensity as usize
    }

    /// Restarts within the last `period`.
    pub(crate) fn used(&self) -> usize {
        let now = Instant::now();
        self.recent
            .iter()
            .filter(|at| now.duration_since(**at) <= self.period)
            .count()
    }

    pub(crate) fn intensity(&self) -> u32 {
        self.intensity
    }

    pub(crate) fn period(&self) -> Duration {
        self.period
    }
}

impl std::fmt::Display for RestartBudget {
    /// "restarts used of allowed, per period", as `sys::get_status` shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} restarts used per {:?}",
            self.used(),
            self.intensity,
            self.period
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn more_than_intensity_within_period_is_refused() {
        let mut budget = RestartBudget::new(3, Duration::from_secs(5));
        assert!(budget.allow_restart());
        assert!(budget.allow_restart());
        assert!(budget.allow_restart());
        assert!(!budget.allow_restart());
    }

    #[tokio::test(start_paused = true)]
    async fn restarts_older_than_the_period_do_not_count() {
        let mut budget = RestartBudget::new(1, Duration::from_secs(5));
        assert!(budget.allow_restart());
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(budget.allow_restart());
        assert!(!budget.allow_restart());
    }

    #[tokio::test(start_paused = true)]
    async fn zero_intensity_refuses_the_first_restart() {
        let mut budget = RestartBudget::new(0, Duration::from_secs(5));
        assert!(!budget.allow_restart());
    }
}

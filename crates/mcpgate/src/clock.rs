//! Where mcpgate reads the time of day: the system clock, or — in tests — a clock that can be
//! moved forward, shared by every part built with it, so that expiry is tested without
//! waiting for it. Durations between two moments (timeouts, caches) keep using `Instant`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time of day as mcpgate reads it. [`Clock::default`] is the system clock.
#[derive(Clone, Default)]
pub struct Clock {
    /// How far an adjustable clock runs ahead of the system's, in milliseconds; `None` for
    /// the system clock itself.
    ahead_ms: Option<Arc<AtomicU64>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ahead_ms {
            None => f.write_str("Clock::system"),
            Some(ahead) => write!(f, "Clock::adjustable(+{} ms)", ahead.load(Ordering::Relaxed)),
        }
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that runs with the system's and can be moved forward with [`Clock::advance`];
    /// its clones move with it.
    pub fn adjustable() -> Self {
        Self { ahead_ms: Some(Arc::new(AtomicU64::new(0))) }
    }

    /// Moves an adjustable clock (and its clones) forward by `by`. The system clock cannot be
    /// moved: `false`, and nothing changes.
    pub fn advance(&self, by: Duration) -> bool {
        let Some(ahead) = &self.ahead_ms else { return false };
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        ahead.fetch_add(by, Ordering::Relaxed);
        true
    }

    /// Now.
    pub fn now(&self) -> SystemTime {
        let system = SystemTime::now();
        match &self.ahead_ms {
            None => system,
            Some(ahead) => system + Duration::from_millis(ahead.load(Ordering::Relaxed)),
        }
    }

    /// Seconds since the Unix epoch.
    pub fn unix_now(&self) -> u64 {
        self.now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_now_ms(&self) -> u64 {
        let since = self.now().duration_since(UNIX_EPOCH).unwrap_or_default();
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adjustable_clock_and_its_clones_move_together_and_the_system_clock_does_not() {
        let clock = Clock::adjustable();
        let clone = clock.clone();
        let before = clone.unix_now();
        assert!(clock.advance(Duration::from_secs(3600)));
        assert!(clone.unix_now() >= before + 3600);
        let system = Clock::system();
        assert!(!system.advance(Duration::from_secs(3600)));
        assert!(system.unix_now() < before + 3600);
    }
}

//! Requests per API key per second (`--rate-limit`): a token bucket per
//! key, refilled continuously. A key over its rate is answered 429 with
//! `Retry-After` before anything else of its request is read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RateLimiter {
    /// Tokens per second; the bucket holds as many (one second's burst).
    rate: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// None when `per_second` is 0: no limit.
    pub fn new(per_second: u32) -> Option<RateLimiter> {
        (per_second > 0).then(|| RateLimiter {
            rate: f64::from(per_second),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a token for `key`, or says how long until one is free.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            // Forget keys idle long enough to be full again.
            buckets.retain(|_, b| now.duration_since(b.at).as_secs_f64() * self.rate < self.rate);
        }
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.rate,
            at: now,
        });
        let refill = now.duration_since(b.at).as_secs_f64() * self.rate;
        b.tokens = (b.tokens + refill).min(self.rate);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let l = RateLimiter::new(10).unwrap();
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(l.check_at("k", t0).is_ok());
        }
        let wait = l.check_at("k", t0).unwrap_err();
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Other keys are not affected.
        assert!(l.check_at("other", t0).is_ok());
        // A tenth of a second later, one more.
        let t1 = t0 + Duration::from_millis(100);
        assert!(l.check_at("k", t1).is_ok());
        assert!(l.check_at("k", t1).is_err());
        assert!(RateLimiter::new(0).is_none());
    }
}

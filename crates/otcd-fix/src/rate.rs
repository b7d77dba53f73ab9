//! Token buckets for a session's message rates: the gateway's cap on every message, and the key's tier limits per
//! class of application message (RFQs, orders, reads), as the HTTP edge applies them per request class.

use std::time::Instant;

/// `rate` tokens a second, at most `rate` saved up (a burst of one second).
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(rate_per_second: u32) -> Self {
        let rate = f64::from(rate_per_second.max(1));
        Self { rate, tokens: rate, at: Instant::now() }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self) -> bool {
        self.take_at(Instant::now())
    }

    fn take_at(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate);
        self.at = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// The application message classes of the tier's `rate_limits`.
#[derive(Debug, Clone)]
pub struct TierBuckets {
    pub rfq: Bucket,
    pub orders: Bucket,
    pub reads: Bucket,
}

impl TierBuckets {
    pub fn new(limits: otcd_core::model::RateLimits) -> Self {
        Self { rfq: Bucket::new(limits.rfq), orders: Bucket::new(limits.orders), reads: Bucket::new(limits.reads) }
    }

    /// Whether a message of `msg_type` may go on now (admin and unknown types are not counted here).
    pub fn allow(&mut self, msg_type: &str) -> bool {
        match msg_type {
            "R" => self.rfq.take(),
            "D" | "F" => self.orders.take(),
            "H" | "V" => self.reads.take(),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_rate_and_refills() {
        let start = Instant::now();
        let mut bucket = Bucket { rate: 5.0, tokens: 5.0, at: start };
        assert_eq!((0..10).filter(|_| bucket.take_at(start)).count(), 5);
        assert!(!bucket.take_at(start + Duration::from_millis(100)));
        assert!(bucket.take_at(start + Duration::from_millis(200)));
        assert_eq!(
            (0..10).filter(|_| bucket.take_at(start + Duration::from_secs(60))).count(),
            5,
            "a burst of one second"
        );
    }
}

//! Rate limits (API.md): per key and per source IP, per request class, GCRA (the `governor` crate). Client keys
//! get their tier's per-class rates (the `standard` tier: 100 a second of one class); desk keys and source
//! addresses get the configured rates. Over the limit: `429 rate_limited` with `Retry-After`.
//!
//! The per-IP check runs before authentication, so a flood of badly signed requests is throttled too; the
//! per-key check runs after it.

use crate::auth::Principal;
use crate::problem::ApiError;
use axum::http::{Method, StatusCode};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use otcd_core::ids::{ClientId, KeyId, TierName};
use otcd_core::model::RateLimits as TierRateLimits;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How often (in checks) idle per-IP state is dropped, keeping the per-IP tables bounded.
const RETAIN_EVERY_CHECKS: u64 = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestClass {
    Reads,
    Rfq,
    Orders,
    Withdrawals,
    Admin,
}

impl RequestClass {
    const ALL: [RequestClass; 5] =
        [RequestClass::Reads, RequestClass::Rfq, RequestClass::Orders, RequestClass::Withdrawals, RequestClass::Admin];

    pub fn of(method: &Method, path: &str) -> Self {
        let writes =
            method == Method::POST || method == Method::DELETE || method == Method::PUT || method == Method::PATCH;
        if path.starts_with("/v1/admin/") {
            RequestClass::Admin
        } else if writes && path == "/v1/rfq" {
            RequestClass::Rfq
        } else if writes && path.starts_with("/v1/orders") {
            RequestClass::Orders
        } else if writes && (path.starts_with("/v1/withdrawals") || path.starts_with("/v1/destinations")) {
            RequestClass::Withdrawals
        } else {
            RequestClass::Reads
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            RequestClass::Reads => "reads",
            RequestClass::Rfq => "rfq",
            RequestClass::Orders => "orders",
            RequestClass::Withdrawals => "withdrawals",
            RequestClass::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimitConfig {
    /// Requests per second of one class from one source address.
    pub per_ip_per_second: u32,
    /// Requests per second of one class from one desk (operator) key.
    pub desk_key_per_second: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { per_ip_per_second: 20_000, desk_key_per_second: 10_000 }
    }
}

pub struct RateLimits {
    config: RateLimitConfig,
    tiers: RwLock<HashMap<TierName, TierRateLimits>>,
    client_tiers: RwLock<HashMap<ClientId, TierName>>,
    /// One limiter per (key, class), with the rate it was made for (a tier change replaces it).
    per_key: Mutex<HashMap<(KeyId, RequestClass), KeyLimiter>>,
    per_ip: Vec<DefaultKeyedRateLimiter<IpAddr>>,
    checks: AtomicU64,
}

/// A key's limiter for one class and the rate it was made for.
type KeyLimiter = (u32, Arc<DefaultDirectRateLimiter>);

fn quota(per_second: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(per_second.max(1)).expect("at least 1"))
}

fn too_many(class: RequestClass, scope: &str, wait_seconds: u64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many {} requests from this {scope}", class.name()),
    )
    .with_retry_after(wait_seconds.max(1))
}

impl RateLimits {
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            config,
            tiers: RwLock::new(HashMap::new()),
            client_tiers: RwLock::new(HashMap::new()),
            per_key: Mutex::new(HashMap::new()),
            per_ip: RequestClass::ALL.iter().map(|_| RateLimiter::dashmap(quota(config.per_ip_per_second))).collect(),
            checks: AtomicU64::new(0),
        }
    }

    pub fn set_tier(&self, tier: &TierName, limits: TierRateLimits) {
        self.tiers.write().insert(tier.clone(), limits);
    }

    pub fn set_client_tier(&self, client_id: &ClientId, tier: &TierName) {
        self.client_tiers.write().insert(client_id.clone(), tier.clone());
    }

    /// The source address's budget for this class; checked before authentication.
    pub fn check_ip(&self, address: IpAddr, class: RequestClass) -> Result<(), ApiError> {
        if self.checks.fetch_add(1, Ordering::Relaxed).is_multiple_of(RETAIN_EVERY_CHECKS) {
            self.per_ip.iter().for_each(|limiter| limiter.retain_recent());
        }
        self.per_ip[class.index()].check_key(&address).map_err(|not_until| {
            too_many(class, "address", not_until.wait_time_from(DefaultClock::default().now()).as_secs() + 1)
        })
    }

    /// The key's budget for this class: its tier's rate for client keys, the desk rate for operator keys.
    pub fn check_key(&self, principal: &Principal, class: RequestClass) -> Result<(), ApiError> {
        let per_second = match &principal.key.client_id {
            None => self.config.desk_key_per_second,
            Some(client_id) => self.client_rate(client_id, class),
        };
        let limiter = {
            let mut per_key = self.per_key.lock();
            let entry = per_key
                .entry((principal.key.key_id.clone(), class))
                .or_insert_with(|| (per_second, Arc::new(RateLimiter::direct(quota(per_second)))));
            if entry.0 != per_second {
                *entry = (per_second, Arc::new(RateLimiter::direct(quota(per_second))));
            }
            entry.1.clone()
        };
        limiter.check().map_err(|not_until| {
            too_many(class, "key", not_until.wait_time_from(DefaultClock::default().now()).as_secs() + 1)
        })
    }

    fn client_rate(&self, client_id: &ClientId, class: RequestClass) -> u32 {
        let tier = self.client_tiers.read().get(client_id).cloned();
        let limits = tier.and_then(|tier| self.tiers.read().get(&tier).copied()).unwrap_or_default();
        match class {
            RequestClass::Reads | RequestClass::Admin => limits.reads,
            RequestClass::Rfq => limits.rfq,
            RequestClass::Orders => limits.orders,
            RequestClass::Withdrawals => limits.withdrawals,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_path_and_method() {
        assert_eq!(RequestClass::of(&Method::GET, "/v1/balances"), RequestClass::Reads);
        assert_eq!(RequestClass::of(&Method::POST, "/v1/rfq"), RequestClass::Rfq);
        assert_eq!(RequestClass::of(&Method::POST, "/v1/orders"), RequestClass::Orders);
        assert_eq!(RequestClass::of(&Method::DELETE, "/v1/orders/o_1"), RequestClass::Orders);
        assert_eq!(RequestClass::of(&Method::GET, "/v1/orders"), RequestClass::Reads);
        assert_eq!(RequestClass::of(&Method::POST, "/v1/withdrawals"), RequestClass::Withdrawals);
        assert_eq!(RequestClass::of(&Method::GET, "/v1/admin/clients"), RequestClass::Admin);
    }

    #[test]
    fn an_address_over_its_budget_gets_retry_after() {
        let limits = RateLimits::new(RateLimitConfig { per_ip_per_second: 3, desk_key_per_second: 10 });
        let address: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            limits.check_ip(address, RequestClass::Reads).unwrap();
        }
        let refused = limits.check_ip(address, RequestClass::Reads).unwrap_err();
        assert_eq!((refused.status.as_u16(), refused.code), (429, "rate_limited"));
        assert!(refused.retry_after_seconds.is_some_and(|seconds| seconds >= 1));
        // Another class has its own budget.
        limits.check_ip(address, RequestClass::Orders).unwrap();
    }
}

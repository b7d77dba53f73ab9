//! Black-box tests of the `otcd` binary against the public contract (API.md): each test starts its own
//! `otcd serve` on a fresh data directory and port and talks to it over HTTP only.

mod audit;
mod auth;
mod auth_flood;
mod cli;
mod deposit_batches;
mod deposits;
mod durability;
mod event_stream;
mod inputs;
mod onboarding;
mod openapi;
mod operators;
mod reports;
mod sanctions_updates;
mod settlement_crash;
mod surveillance;
mod tamper;
mod webhooks;

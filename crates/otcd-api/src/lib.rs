//! otcd's adapters around the deterministic core: the engine runner (threads, group commit), the data
//! directory (recovery), and the HTTP API (signed requests, problem+json, metrics, OpenAPI).

pub mod app;
pub mod audit;
pub mod auth;
pub mod background;
pub mod demo;
pub mod events;
pub mod json;
pub mod ladders;
pub mod market_inputs;
pub mod metrics;
pub mod order_watch;
pub mod problem;
pub mod rail_books;
pub mod ratelimit;
pub mod reconciliation;
pub mod reports;
pub mod routes;
pub mod runner;
pub mod screening;
pub mod secrets;
pub mod server;
pub mod sessions;
pub mod settlement_worker;
pub mod snapshot_follower;
pub mod store;
pub mod stream;
pub mod surveillance_raiser;
pub mod views;
pub mod web;

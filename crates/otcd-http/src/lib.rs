//! otcd's HTTP adapter: signed requests and browser sessions, rate limits, problem+json errors, JSON edge
//! parsing, views, the routes, the WebSocket stream, OpenAPI and the embedded web pages.
//!
//! A route parses and authorizes the request, calls a desk service (`otcd_services::DeskServices`), and renders
//! the typed result. It decides nothing about money or state: that is the engine's, and building the command is
//! the services'.
//!
//! Architecture invariant: this is the only library crate that serves HTTP (axum); `otcd-webhooks`, an
//! outbound client, is the other that reaches hyper and tower.

pub mod app;
pub mod auth;
pub mod auth_failures;
pub mod cluster;
pub mod connections;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod ratelimit;
pub mod routes;
pub mod server;
pub mod sessions;
pub mod stream;
pub mod views;
pub mod web;

//! HTTP routes. Handlers only parse, authenticate and submit to the engine; all decisions are the engine's.

pub mod admin;
pub mod client;
pub mod compliance;
pub mod console;
pub mod controls;
pub mod custody;
pub mod hedging;
pub mod market;
pub mod orders;
pub mod public;
pub mod quotes;
pub mod reports;
pub mod sessions;
pub mod webhooks;
pub mod withdrawals;

/// Query parameters shared by simple lists.
pub mod orders_params {
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct LimitOnly {
        pub limit: Option<usize>,
    }
}

use crate::app::AppState;
use crate::problem::{ApiError, ApiResult};
use axum::http::Uri;
use axum::routing::{get, post, put};
use axum::Router;
use otcd_core::engine::PAGE_LIMIT_MAX;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(public::healthz))
        .route("/readyz", get(public::readyz))
        .route("/v1/admin/cluster", get(public::cluster))
        .route("/metrics", get(public::metrics))
        .route("/openapi.json", get(public::openapi))
        .route("/v1/instruments", get(public::instruments))
        .route("/v1/assets", get(public::assets))
        .route("/v1/account", get(client::account))
        .route("/v1/balances", get(client::balances))
        .route("/v1/ledger", get(client::ledger))
        .route("/v1/admin/clients", post(admin::create_client).get(admin::list_clients))
        .route("/v1/admin/clients/{client_id}", get(admin::get_client).patch(admin::update_client))
        .route("/v1/admin/clients/{client_id}/keys", post(admin::create_client_key))
        .route("/v1/admin/keys", post(admin::create_desk_key).get(admin::list_keys))
        .route("/v1/admin/keys/{key_id}", axum::routing::delete(admin::revoke_key))
        .route("/v1/admin/tiers", get(admin::list_tiers))
        .route("/v1/admin/tiers/{tier}", put(admin::put_tier))
        .route("/v1/admin/deposits", post(admin::create_deposit))
        .route("/v1/admin/deposits/batch", post(admin::create_deposits))
        .route("/v1/admin/audit/verify", get(admin::audit_verify))
        .route("/v1/admin/audit/checkpoints", get(admin::audit_checkpoints))
        .route("/v1/admin/audit/export", get(admin::audit_export))
        .route("/v1/admin/market/venues", get(market::list_venues))
        .route("/v1/admin/market/{instrument}", put(quotes::put_manual_market))
        .route("/v1/admin/skew/{asset}", put(admin::put_skew))
        .route("/v1/admin/instruments/{instrument}", put(controls::put_instrument_control))
        .route("/v1/admin/desk/kill-switch", put(controls::put_kill_switch))
        .route("/v1/admin/desk/position-limits/{asset}", put(controls::put_position_limit))
        .route("/v1/admin/trading", get(controls::get_trading_controls))
        .route("/v1/admin/hedging", get(hedging::get_hedging))
        .route("/v1/admin/hedging/{asset}", put(hedging::put_hedging_policy))
        .route("/v1/admin/venues/{venue}/transfers", post(hedging::create_venue_transfer))
        .route("/v1/admin/jurisdictions", get(compliance::list_jurisdictions))
        .route("/v1/destinations", post(withdrawals::create_destination).get(withdrawals::list_destinations))
        .route("/v1/withdrawals", post(withdrawals::create_withdrawal).get(withdrawals::list_withdrawals))
        .route("/v1/withdrawals/{withdrawal_id}", get(withdrawals::get_withdrawal))
        .route("/v1/admin/destinations", get(withdrawals::admin_destinations))
        .route("/v1/admin/destinations/{destination_id}", axum::routing::patch(withdrawals::set_destination_status))
        .route("/v1/admin/withdrawals", get(withdrawals::admin_withdrawals))
        .route("/v1/admin/settlements", get(withdrawals::list_instructions))
        .route("/v1/deposit-addresses", post(custody::deposit_address))
        .route("/v1/admin/custody", get(custody::get_custody))
        .route("/v1/admin/custody/simulate-deposit", post(custody::simulate_deposit))
        .route("/v1/admin/custody/simulate-rail-movement", post(custody::simulate_rail_movement))
        .route("/v1/admin/reconciliation", get(custody::get_reconciliation))
        .route("/v1/admin/custody/policies/{asset}", put(custody::put_policy))
        .route("/v1/admin/custody/top-ups/{top_up_id}/approve", post(custody::approve_top_up))
        .route("/v1/admin/settlements/run", post(withdrawals::run_net_settlement))
        .route("/v1/admin/sanctions/screen", get(compliance::screen))
        .route("/v1/admin/sanctions/reload", post(compliance::reload_sanctions))
        .route("/v1/admin/alerts", get(compliance::list_alerts))
        .route("/v1/admin/audit/events", get(compliance::audit_events))
        .route("/v1/admin/trades", get(reports::trades))
        .route("/v1/admin/reports/{report}", get(reports::report))
        .route("/v1/admin/alerts/{alert_id}", axum::routing::patch(compliance::update_alert))
        .route("/v1/admin/aml-rules", put(compliance::put_aml_rules))
        .route("/v1/admin/jurisdictions/{code}", put(compliance::put_jurisdiction))
        .route("/v1/admin/desk/funding", post(admin::fund_desk))
        .route("/v1/admin/desk/positions", get(admin::desk_positions))
        .route("/v1/prices/{instrument}", get(quotes::indicative_price))
        .route("/v1/rfq", post(quotes::request_for_quote))
        .route("/v1/orders", post(orders::place_order).get(orders::list_orders).delete(orders::cancel_all_orders))
        .route("/v1/orders/{order_id}", get(orders::get_order).delete(orders::cancel_order))
        .route("/v1/trades", get(orders::list_trades))
        .route("/v1/quotes/{quote_id}", get(quotes::get_quote))
        .route("/v1/stream", get(crate::stream::stream))
        .route("/v1/webhooks", post(webhooks::create_webhook).get(webhooks::list_webhooks))
        .route("/v1/webhooks/{webhook_id}", get(webhooks::get_webhook).delete(webhooks::delete_webhook))
        .route("/v1/webhooks/{webhook_id}/deliveries", get(webhooks::list_deliveries))
        .route("/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", post(webhooks::redeliver))
        .route("/v1/sessions", post(sessions::create_session))
        .route("/v1/admin/console/trades", get(console::recent_trades))
        .route("/v1/admin/desk/exposure", get(console::desk_exposure))
        .route("/", get(crate::web::console))
        .route("/ui/{*path}", get(crate::web::ui))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "otcd", description = "OTC trading desk API. Every /v1 endpoint except instruments and assets needs a signed request: the reference, with signing, errors and the stream, is docs/api.md in the otcd repository."),
    paths(
        public::healthz, public::readyz, public::cluster, public::metrics, public::instruments, public::assets,
        client::account, client::balances, client::ledger,
        admin::create_client, admin::list_clients, admin::get_client, admin::update_client,
        admin::create_client_key, admin::create_desk_key, admin::list_keys, admin::revoke_key,
        admin::list_tiers, admin::put_tier, admin::create_deposit, admin::create_deposits,
        admin::audit_verify,
        admin::audit_checkpoints, admin::audit_export,
        admin::put_skew, admin::fund_desk, controls::put_instrument_control, controls::put_kill_switch,
        controls::put_position_limit, controls::get_trading_controls, hedging::put_hedging_policy,
        hedging::get_hedging, hedging::create_venue_transfer, compliance::put_jurisdiction,
        compliance::list_jurisdictions, compliance::screen, compliance::reload_sanctions, compliance::list_alerts,
        compliance::update_alert, compliance::audit_events, compliance::put_aml_rules, withdrawals::create_destination, withdrawals::list_destinations,
        withdrawals::create_withdrawal, withdrawals::list_withdrawals, withdrawals::get_withdrawal,
        withdrawals::set_destination_status, withdrawals::admin_destinations, withdrawals::admin_withdrawals, withdrawals::run_net_settlement,
        withdrawals::list_instructions, custody::deposit_address, custody::get_custody, custody::simulate_deposit,
        custody::simulate_rail_movement, custody::get_reconciliation,
        custody::put_policy, custody::approve_top_up, admin::desk_positions,
        orders::place_order, orders::get_order, orders::list_orders, orders::list_trades, orders::cancel_order,
        orders::cancel_all_orders,
        quotes::indicative_price, quotes::request_for_quote, quotes::get_quote, quotes::put_manual_market,
        market::list_venues,
        sessions::create_session, console::recent_trades, console::desk_exposure,
        reports::trades, reports::report,
        webhooks::create_webhook, webhooks::list_webhooks, webhooks::get_webhook, webhooks::delete_webhook,
        webhooks::list_deliveries, webhooks::redeliver,
    ),
    components(schemas(crate::problem::Problem)),
    modifiers(&SignedRequests),
)]
pub struct ApiDoc;

struct SignedRequests;

impl utoipa::Modify for SignedRequests {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, header) in
            [("otc_key", "OTC-KEY"), ("otc_timestamp", "OTC-TIMESTAMP"), ("otc_signature", "OTC-SIGNATURE")]
        {
            components.add_security_scheme(name, SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(header))));
        }
        // Session tokens from POST /v1/sessions, for web pages.
        components.add_security_scheme(
            "session_token",
            SecurityScheme::Http(utoipa::openapi::security::Http::new(
                utoipa::openapi::security::HttpAuthScheme::Bearer,
            )),
        );
    }
}

/// Parses query parameters strictly (unknown parameters are refused).
pub fn parse_query<T: DeserializeOwned>(uri: &Uri) -> ApiResult<T> {
    let query = uri.query().unwrap_or("");
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded_parse(query));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let message = error.inner().to_string();
        let unknown =
            message.strip_prefix("unknown field `").and_then(|rest| rest.split('`').next()).map(str::to_owned);
        ApiError::invalid(unknown.unwrap_or_else(|| "query".to_owned()), message)
    })
}

fn form_urlencoded_parse(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

/// `limit` as API.md defines it: default 100, 1 to 1000.
pub fn page_limit(limit: Option<usize>) -> ApiResult<usize> {
    match limit.unwrap_or(100) {
        limit @ 1..=PAGE_LIMIT_MAX => Ok(limit),
        _ => Err(ApiError::invalid("limit", "must be between 1 and 1000")),
    }
}

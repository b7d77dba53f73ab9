//! Small read-only admin views the operations console needs: recent trades across clients and the desk's
//! exposure marked to market. They only read engine queries and the market hub; nothing here changes state.

use super::{page_limit, parse_query};
use crate::app::{AppState, Signed};
use crate::json::format_timestamp;
use crate::problem::ApiResult;
use crate::views::{ListView, USD_SCALE};
use axum::extract::State;
use axum::http::Uri;
use axum::Json;
use otcd_core::decimal::format_scaled;
use otcd_core::engine::orders::Trade;
use otcd_core::market::Side;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecentParams {
    limit: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeskTradeView {
    pub trade_id: String,
    pub order_id: String,
    pub client_id: String,
    pub client_name: String,
    pub instrument: String,
    /// From the client's point of view.
    pub side: String,
    pub price: String,
    pub quantity: String,
    pub quote_amount: String,
    pub quote_asset: String,
    /// The desk's fee, in the quote asset.
    pub fee: String,
    /// Indicative USD value at execution, when it was known.
    pub notional_usd: Option<String>,
    pub executed_at: String,
}

fn trade_number(trade: &Trade) -> u64 {
    trade.trade_id.strip_prefix("t_").and_then(|number| number.parse().ok()).unwrap_or(0)
}

/// The newest trades of every client, newest first (`limit` 1 to 1000, default 100).
#[utoipa::path(get, path = "/v1/admin/console/trades", tag = "admin", params(("limit" = Option<usize>, Query,)),
    responses((status = 200, body = ListView<DeskTradeView>)))]
pub async fn recent_trades(
    State(state): State<AppState>,
    uri: Uri,
    signed: Signed,
) -> ApiResult<Json<ListView<DeskTradeView>>> {
    super::admin::admin(&signed)?;
    let params: RecentParams = parse_query(&uri)?;
    let limit = page_limit(params.limit)?;
    let trades = state
        .desk
        .read(move |desk| {
            let mut newest: Vec<(Trade, String)> = desk
                .clients()
                .flat_map(|client| {
                    desk.trades_of(&client.client_id)
                        .rev()
                        .take(limit)
                        .map(|trade| (trade.clone(), client.name.clone()))
                })
                .collect();
            newest.sort_by_key(|(trade, _)| std::cmp::Reverse(trade_number(trade)));
            newest.truncate(limit);
            newest
        })
        .await?;
    let items = trades
        .iter()
        .filter_map(|(trade, client_name)| {
            let instrument = state.desk.catalog.instrument(&trade.instrument)?;
            Some(DeskTradeView {
                trade_id: trade.trade_id.clone(),
                order_id: trade.order_id.clone(),
                client_id: trade.client_id.to_string(),
                client_name: client_name.clone(),
                instrument: trade.instrument.clone(),
                side: if trade.side == Side::Buy { "buy" } else { "sell" }.to_owned(),
                price: format_scaled(trade.price, instrument.price_scale),
                quantity: format_scaled(trade.quantity, state.desk.base_scale(instrument)),
                quote_amount: format_scaled(trade.quote_amount, state.desk.quote_scale(instrument)),
                quote_asset: instrument.quote.to_string(),
                fee: format_scaled(trade.fee, state.desk.quote_scale(instrument)),
                notional_usd: trade.notional_usd.map(|cents| format_scaled(cents, USD_SCALE)),
                executed_at: format_timestamp(trade.executed_at),
            })
        })
        .collect();
    Ok(Json(ListView { items, next_cursor: None }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExposureLine {
    pub asset: String,
    /// The desk's position: positive = long.
    pub position: String,
    /// The position valued at the current USD mid (indicative), `null` without market data.
    pub value_usd: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExposureView {
    pub items: Vec<ExposureLine>,
    /// Sum of the valued lines: the desk's mark-to-market P&L when it started flat (capital funded through
    /// `POST /v1/admin/desk/funding` is part of the positions).
    pub net_value_usd: String,
    /// Sum of the absolute values: gross exposure.
    pub gross_value_usd: String,
    pub as_of: String,
}

/// The desk's positions marked to market in USD (indicative mids, staleness ignored).
#[utoipa::path(get, path = "/v1/admin/desk/exposure", tag = "admin", responses((status = 200, body = ExposureView)))]
pub async fn desk_exposure(State(state): State<AppState>, signed: Signed) -> ApiResult<Json<ExposureView>> {
    super::admin::admin(&signed)?;
    let assets: Vec<_> = state.desk.catalog.assets().iter().map(|asset| (asset.code, asset.scale)).collect();
    let positions = state
        .desk
        .read(move |desk| {
            assets.iter().map(|(code, scale)| (*code, *scale, desk.desk_position(*code))).collect::<Vec<_>>()
        })
        .await?;
    let (mut net, mut gross) = (0i128, 0i128);
    let mut items = Vec::new();
    for (code, scale, position) in positions {
        let value = if code.as_str() == "USD" {
            Some(position)
        } else {
            state.desk.catalog.instrument(&format!("{code}-USD")).and_then(|instrument| {
                state.desk.notional_usd(instrument, position.abs()).map(|cents| cents * position.signum())
            })
        };
        if let Some(cents) = value {
            net = net.saturating_add(cents);
            gross = gross.saturating_add(cents.abs());
        }
        items.push(ExposureLine {
            asset: code.to_string(),
            position: format_scaled(position, scale),
            value_usd: value.map(|cents| format_scaled(cents, USD_SCALE)),
        });
    }
    Ok(Json(ExposureView {
        items,
        net_value_usd: format_scaled(net, USD_SCALE),
        gross_value_usd: format_scaled(gross, USD_SCALE),
        as_of: format_timestamp(state.desk.clock.now()),
    }))
}

//! The state of the exchange connectors: `GET /v1/admin/market/venues` and their lines of `/metrics`.

use super::admin::admin;
use crate::app::{AppState, Signed};
use crate::json::format_timestamp;
use crate::problem::ApiResult;
use axum::extract::State;
use axum::Json;
use otcd_core::time::TimestampMs;
use otcd_market::{FeedState, FeedStatus};
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VenueFeedView {
    /// The venue's configured name (the `venue` of its books).
    pub venue: String,
    /// `binance`, `coinbase`, `kraken` or `bitstamp`.
    pub kind: String,
    pub instrument: String,
    pub venue_symbol: String,
    /// `connecting`, `resyncing`, `live`, `stale` (live but older than its max age), `disconnected` or `stopped`.
    /// Only a `live` feed is priced.
    pub state: String,
    /// When the book was last updated or confirmed (receive time); absent before the first.
    pub last_update: Option<String>,
    pub age_ms: Option<i64>,
    pub updates: u64,
    pub resyncs: u64,
    pub checksum_failures: u64,
    pub reconnects: u64,
    pub rejected_messages: u64,
    pub max_book_age_ms: i64,
    /// The venue's taker fee in basis points, as configured.
    pub fee_bps: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VenueFeedsView {
    pub data: Vec<VenueFeedView>,
}

fn view(status: FeedStatus, now: TimestampMs) -> VenueFeedView {
    VenueFeedView {
        state: status.effective_state(now).to_owned(),
        age_ms: status.age_ms(now),
        last_update: status.last_update.map(format_timestamp),
        venue: status.venue,
        kind: status.kind,
        instrument: status.instrument,
        venue_symbol: status.venue_symbol,
        updates: status.updates,
        resyncs: status.resyncs,
        checksum_failures: status.checksum_failures,
        reconnects: status.reconnects,
        rejected_messages: status.rejected_messages,
        max_book_age_ms: status.max_book_age_ms,
        fee_bps: status.fee_bps,
    }
}

/// Every exchange connector's feed (one per venue and instrument) with its state, last update and counters.
/// Empty unless the desk runs with `--market venues`.
#[utoipa::path(get, path = "/v1/admin/market/venues", tag = "admin", responses((status = 200, body = VenueFeedsView)))]
pub async fn list_venues(State(state): State<AppState>, signed: Signed) -> ApiResult<Json<VenueFeedsView>> {
    admin(&signed)?;
    let now = state.desk.clock.now();
    let data = state.desk.market.venue_board().feeds().into_iter().map(|status| view(status, now)).collect();
    Ok(Json(VenueFeedsView { data }))
}

/// A counter's name, help and how to read it from a feed.
type Counter = (&'static str, &'static str, fn(&FeedStatus) -> u64);

/// The connectors' metrics in the Prometheus text format, one series per venue and instrument.
pub fn render_metrics(feeds: &[FeedStatus], now: TimestampMs) -> String {
    let mut text = String::new();
    if feeds.is_empty() {
        return text;
    }
    let labels = |status: &FeedStatus| {
        format!("venue=\"{}\",instrument=\"{}\"", escape(&status.venue), escape(&status.instrument))
    };
    let _ = writeln!(
        text,
        "# HELP otcd_venue_book_age_seconds Seconds since the venue's book was last updated or confirmed."
    );
    let _ = writeln!(text, "# TYPE otcd_venue_book_age_seconds gauge");
    for status in feeds {
        if let Some(age) = status.age_ms(now) {
            let _ =
                writeln!(text, "otcd_venue_book_age_seconds{{{}}} {}.{:03}", labels(status), age / 1_000, age % 1_000);
        }
    }
    let counters: [Counter; 5] = [
        ("updates", "Books published: updates applied, and heartbeats confirming a quiet book (rate() gives updates per second).", |s| s.updates),
        ("resyncs", "Books withdrawn and rebuilt after a gap, checksum mismatch, crossed book or full buffer.", |s| {
            s.resyncs
        }),
        ("checksum_failures", "Kraken book checksum mismatches.", |s| s.checksum_failures),
        ("reconnects", "Connections reopened.", |s| s.reconnects),
        ("rejected_messages", "Messages refused as malformed, oversized, over the rate limit or stale.", |s| {
            s.rejected_messages
        }),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(text, "# HELP otcd_venue_{name} {help}");
        let _ = writeln!(text, "# TYPE otcd_venue_{name} counter");
        for status in feeds {
            let _ = writeln!(text, "otcd_venue_{name}_total{{{}}} {}", labels(status), value(status));
        }
    }
    let _ =
        writeln!(text, "# HELP otcd_venue_state The feed's state (1 for the current one); only live feeds are priced.");
    let _ = writeln!(text, "# TYPE otcd_venue_state gauge");
    for status in feeds {
        for state in FeedState::ALL {
            let _ = writeln!(
                text,
                "otcd_venue_state{{{},state=\"{}\"}} {}",
                labels(status),
                state.as_str(),
                u8::from(status.state == state)
            );
        }
    }
    text
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_name_each_venue_and_instrument() {
        let status = FeedStatus {
            venue: "kraken".into(),
            kind: "kraken".into(),
            instrument: "BTC-USD".into(),
            venue_symbol: "BTC/USD".into(),
            state: FeedState::Live,
            last_update: Some(TimestampMs(1_000)),
            updates: 7,
            resyncs: 1,
            checksum_failures: 1,
            reconnects: 2,
            rejected_messages: 0,
            max_book_age_ms: 2_000,
            fee_bps: "26".into(),
        };
        let text = render_metrics(&[status], TimestampMs(2_250));
        assert!(
            text.contains("otcd_venue_book_age_seconds{venue=\"kraken\",instrument=\"BTC-USD\"} 1.250\n"),
            "{text}"
        );
        assert!(text.contains("otcd_venue_updates_total{venue=\"kraken\",instrument=\"BTC-USD\"} 7\n"));
        assert!(text.contains("otcd_venue_checksum_failures_total{venue=\"kraken\",instrument=\"BTC-USD\"} 1\n"));
        assert!(text.contains("otcd_venue_state{venue=\"kraken\",instrument=\"BTC-USD\",state=\"live\"} 1\n"));
        assert!(text.contains("otcd_venue_state{venue=\"kraken\",instrument=\"BTC-USD\",state=\"resyncing\"} 0\n"));
        assert!(render_metrics(&[], TimestampMs(0)).is_empty());
    }
}

//! The life of one venue's connection, the same for every venue: connect, subscribe, feed the protocol every
//! message, carry out its effects (publish, withdraw, resubscribe, fetch a REST snapshot), ping, and on any end
//! withdraw every book and reconnect after a jittered exponential backoff. A new connection always starts from
//! empty books, so every reconnect is a resync.
//!
//! Limits: a WebSocket message (and a REST body) larger than `message_bytes_max` ends the connection; more than
//! `messages_per_second_max` messages in a second end it; a connection silent for `idle_timeout_ms` is dropped.
//! A malformed message ends the connection too: the book may have missed what the message said, and the only
//! safe answer is to rebuild it.

use crate::config::{Limits, VenueConfig};
use crate::feed::{Effect, Protocol, Reason};
use futures_util::{SinkExt, StreamExt};
use otcd_market::{now_ms, FeedState, FeedStatus, MarketHub};
use rand::Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// How long connecting (TCP, TLS, WebSocket handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a REST snapshot request may take in all.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait before asking again for a snapshot that failed.
const SNAPSHOT_RETRY: Duration = Duration::from_secs(1);
/// A connection that lived this long resets the backoff.
const HEALTHY_SESSION: Duration = Duration::from_secs(60);

/// Why a connection ended.
#[derive(Debug)]
enum SessionEnd {
    Failed(String),
    Closed,
    Silent,
    RateLimited,
    Malformed(String),
    Venue(Reason),
}

impl std::fmt::Display for SessionEnd {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionEnd::Failed(error) => write!(formatter, "connection failed: {error}"),
            SessionEnd::Closed => write!(formatter, "closed by the venue"),
            SessionEnd::Silent => write!(formatter, "silent past the idle timeout"),
            SessionEnd::RateLimited => write!(formatter, "more messages per second than allowed"),
            SessionEnd::Malformed(error) => write!(formatter, "malformed message: {error}"),
            SessionEnd::Venue(reason) => write!(formatter, "{}", reason.as_str()),
        }
    }
}

/// The delay before reconnect attempt `failures` (0 after a healthy connection): exponential from the minimum,
/// capped at the maximum, with full jitter over its upper half so many desks do not reconnect in step.
pub fn backoff(limits: &Limits, failures: u32, random: &mut impl Rng) -> Duration {
    let ceiling = limits
        .reconnect_delay_ms_min
        .saturating_mul(1_u64 << failures.min(20))
        .min(limits.reconnect_delay_ms_max)
        .max(1);
    Duration::from_millis(random.gen_range(ceiling.div_ceil(2)..=ceiling))
}

/// Messages counted per one-second window.
struct RateWindow {
    started: Instant,
    count: u32,
    max: u32,
}

impl RateWindow {
    fn allow(&mut self, now: Instant) -> bool {
        if now.duration_since(self.started) >= Duration::from_secs(1) {
            self.started = now;
            self.count = 0;
        }
        self.count += 1;
        self.count <= self.max
    }
}

/// What the connection task works with.
struct Context<'a> {
    venue: &'a VenueConfig,
    hub: &'a MarketHub,
    http: &'a reqwest::Client,
}

impl Context<'_> {
    fn update_all(&self, instruments: &[String], change: impl Fn(&mut FeedStatus)) {
        for instrument in instruments {
            self.hub.venue_board().update(&self.venue.name, instrument, &change);
        }
    }

    fn withdraw_all(&self, instruments: &[String], state: FeedState) {
        for instrument in instruments {
            self.hub.withdraw(&self.venue.name, instrument);
        }
        self.update_all(instruments, |status| status.state = state);
    }
}

/// Runs one venue until `stop`.
pub async fn run<P: Protocol>(
    mut protocol: P,
    venue: VenueConfig,
    hub: Arc<MarketHub>,
    mut stop: watch::Receiver<bool>,
) {
    let instruments: Vec<String> = protocol.feeds().feeds.iter().map(|feed| feed.instrument.clone()).collect();
    for feed in &protocol.feeds().feeds {
        hub.venue_board().register(FeedStatus::new(
            &venue.name,
            venue.kind.as_str(),
            &feed.instrument,
            &feed.venue_symbol,
            venue.max_book_age_ms,
            &venue.fee_bps,
        ));
    }
    let http = reqwest::Client::builder()
        .timeout(SNAPSHOT_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default();
    let context = Context { venue: &venue, hub: &hub, http: &http };
    let mut failures: u32 = 0;
    let mut first = true;
    loop {
        if *stop.borrow() {
            break;
        }
        if !first {
            context.update_all(&instruments, |status| status.reconnects += 1);
        }
        first = false;
        context.update_all(&instruments, |status| status.state = FeedState::Connecting);
        let started = Instant::now();
        let end = tokio::select! {
            end = session(&mut protocol, &context, &instruments) => end,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        context.withdraw_all(&instruments, FeedState::Disconnected);
        tracing::warn!(venue = %venue.name, reason = %end, "venue connection ended; reconnecting");
        let healthy = started.elapsed() >= HEALTHY_SESSION || matches!(end, SessionEnd::Venue(Reason::VenueRequest));
        failures = if healthy { 0 } else { failures.saturating_add(1) };
        let delay = backoff(&venue.limits, failures.saturating_sub(1), &mut rand::thread_rng());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
    }
    context.withdraw_all(&instruments, FeedState::Stopped);
}

async fn session<P: Protocol>(protocol: &mut P, context: &Context<'_>, instruments: &[String]) -> SessionEnd {
    let limits = context.venue.limits;
    let config = WebSocketConfig::default()
        .max_message_size(Some(limits.message_bytes_max))
        .max_frame_size(Some(limits.message_bytes_max));
    let connect = tokio_tungstenite::connect_async_with_config(context.venue.ws_url.as_str(), Some(config), false);
    let socket = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok((socket, _response))) => socket,
        Ok(Err(error)) => return SessionEnd::Failed(error.to_string()),
        Err(_) => return SessionEnd::Failed("connect timed out".to_owned()),
    };
    let (mut sink, mut stream) = socket.split();
    for text in protocol.on_connect() {
        if let Err(error) = sink.send(Message::Text(text.into())).await {
            return SessionEnd::Failed(error.to_string());
        }
    }
    context.update_all(instruments, |status| status.state = FeedState::Resyncing);
    let (snapshot_sender, mut snapshots) = mpsc::channel::<(usize, Result<String, String>)>(64);
    // Dropped (every fetch aborted) when the session ends.
    let mut fetches = tokio::task::JoinSet::new();
    let ping_every = Duration::from_millis(limits.ping_interval_ms);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let idle = Duration::from_millis(limits.idle_timeout_ms);
    let mut window = RateWindow { started: Instant::now(), count: 0, max: limits.messages_per_second_max };
    let mut effects: Vec<Effect> = Vec::new();
    loop {
        effects.clear();
        tokio::select! {
            message = tokio::time::timeout(idle, stream.next()) => {
                let text = match message {
                    Err(_) => return SessionEnd::Silent,
                    Ok(None) => return SessionEnd::Closed,
                    Ok(Some(Err(error))) => {
                        reject(context, instruments);
                        return SessionEnd::Failed(error.to_string());
                    }
                    Ok(Some(Ok(Message::Text(text)))) => text,
                    Ok(Some(Ok(Message::Close(_)))) => return SessionEnd::Closed,
                    Ok(Some(Ok(Message::Binary(_)))) => {
                        reject(context, instruments);
                        return SessionEnd::Malformed("a binary message".to_owned());
                    }
                    Ok(Some(Ok(_))) => continue, // ping (answered by the library), pong
                };
                if !window.allow(Instant::now()) {
                    reject(context, instruments);
                    return SessionEnd::RateLimited;
                }
                if let Err(error) = protocol.on_message(text.as_str(), &mut effects) {
                    reject(context, instruments);
                    return SessionEnd::Malformed(error.to_string());
                }
            }
            Some((index, body)) = snapshots.recv() => {
                let outcome = body.and_then(|body| protocol.on_snapshot(index, &body, &mut effects).map_err(|error| error.to_string()));
                if let Err(error) = outcome {
                    tracing::warn!(venue = %context.venue.name, instrument = %instruments[index], %error, "book snapshot failed; asking again");
                    spawn_fetch(&mut fetches, protocol, context, index, SNAPSHOT_RETRY, &snapshot_sender);
                }
            }
            _ = ping.tick() => {
                let mut outgoing = vec![Message::Ping(Vec::new().into())];
                outgoing.extend(protocol.keepalive().map(|text| Message::Text(text.into())));
                for message in outgoing {
                    if let Err(error) = sink.send(message).await {
                        return SessionEnd::Failed(error.to_string());
                    }
                }
            }
        }
        // A message (or a snapshot with the events buffered behind it) may change a book many times: it is
        // published once, as it stands after the whole batch, and only if it is still in sync.
        let mut to_publish = vec![false; instruments.len()];
        for effect in effects.drain(..) {
            match effect {
                Effect::Publish(index) => to_publish[index] = true,
                Effect::Invalidate(index, reason) => {
                    to_publish[index] = false;
                    invalidate(context, &instruments[index], reason);
                }
                Effect::Send(text) => {
                    if let Err(error) = sink.send(Message::Text(text.into())).await {
                        return SessionEnd::Failed(error.to_string());
                    }
                }
                Effect::FetchSnapshot(index) => {
                    spawn_fetch(&mut fetches, protocol, context, index, Duration::ZERO, &snapshot_sender)
                }
                Effect::Reconnect(reason) => return SessionEnd::Venue(reason),
                Effect::Stale(index) => {
                    context
                        .hub
                        .venue_board()
                        .update(&context.venue.name, &instruments[index], |status| status.rejected_messages += 1)
                }
            }
        }
        for (index, _) in to_publish.iter().enumerate().filter(|(_, publish)| **publish) {
            if protocol.feeds().feeds[index].live {
                publish(protocol, context, index);
            }
        }
    }
}

fn reject(context: &Context<'_>, instruments: &[String]) {
    context.update_all(instruments, |status| status.rejected_messages += 1);
}

fn publish<P: Protocol>(protocol: &P, context: &Context<'_>, index: usize) {
    let feed = &protocol.feeds().feeds[index];
    let now = now_ms();
    let book = feed.book.to_venue_book(&context.venue.name, &feed.instrument, &feed.units, context.venue.depth, now);
    match context.hub.publish(book) {
        Ok(()) => context.hub.venue_board().update(&context.venue.name, &feed.instrument, |status| {
            status.state = FeedState::Live;
            status.last_update = Some(now);
            status.updates += 1;
        }),
        Err(error) => {
            tracing::warn!(venue = %context.venue.name, instrument = %feed.instrument, %error, "book refused by the hub")
        }
    }
}

fn invalidate(context: &Context<'_>, instrument: &str, reason: Reason) {
    context.hub.withdraw(&context.venue.name, instrument);
    context.hub.venue_board().update(&context.venue.name, instrument, |status| {
        status.state = FeedState::Resyncing;
        status.resyncs += 1;
        if reason == Reason::Checksum {
            status.checksum_failures += 1;
        }
    });
    tracing::info!(venue = %context.venue.name, instrument, reason = reason.as_str(), "book withdrawn; resyncing");
}

fn spawn_fetch<P: Protocol>(
    fetches: &mut tokio::task::JoinSet<()>,
    protocol: &P,
    context: &Context<'_>,
    index: usize,
    delay: Duration,
    results: &mpsc::Sender<(usize, Result<String, String>)>,
) {
    let Some(url) = protocol.snapshot_url(index) else { return };
    let http = context.http.clone();
    let results = results.clone();
    let bytes_max = context.venue.limits.message_bytes_max;
    fetches.spawn(async move {
        tokio::time::sleep(delay).await;
        let body = fetch(&http, &url, bytes_max).await;
        let _ = results.send((index, body)).await;
    });
}

/// GETs `url` and answers its body, refusing bodies over `bytes_max`.
async fn fetch(http: &reqwest::Client, url: &str, bytes_max: usize) -> Result<String, String> {
    let mut response = http.get(url).send().await.map_err(|error| error.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    if response.content_length().is_some_and(|length| length > bytes_max as u64) {
        return Err(format!("the snapshot is larger than {bytes_max} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| error.to_string())? {
        if body.len() + chunk.len() > bytes_max {
            return Err(format!("the snapshot is larger than {bytes_max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| "the snapshot is not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let limits = Limits { reconnect_delay_ms_min: 100, reconnect_delay_ms_max: 1_000, ..Limits::default() };
        let mut random = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let first = backoff(&limits, 0, &mut random).as_millis();
            assert!((50..=100).contains(&first), "{first}");
            let third = backoff(&limits, 2, &mut random).as_millis();
            assert!((200..=400).contains(&third), "{third}");
            let late = backoff(&limits, 40, &mut random).as_millis();
            assert!((500..=1_000).contains(&late), "{late}");
        }
    }

    #[test]
    fn the_rate_window_counts_per_second() {
        let start = Instant::now();
        let mut window = RateWindow { started: start, count: 0, max: 2 };
        assert!(window.allow(start) && window.allow(start));
        assert!(!window.allow(start + Duration::from_millis(999)));
        assert!(window.allow(start + Duration::from_secs(1)));
    }
}

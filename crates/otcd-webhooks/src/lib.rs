//! The webhook delivery worker: POSTs each event of the core's webhook outbox to every webhook that wants it,
//! signed, in seq order per endpoint, retried with exponential backoff, and journals its progress.
//!
//! Durability: the events waiting for delivery are desk state (`otcd_core::engine::webhooks`: in snapshots and
//! re-appended on replay), read here through the engine (a read is answered only once what it saw is durable),
//! and each webhook's progress is journaled with a batched `AdvanceWebhooks` command at most every
//! [`Settings::advance_every`]. A crash loses at most the progress of the last interval: those events are
//! delivered again after the restart with the same delivery id (at least once; receivers dedupe on
//! `OTC-WEBHOOK-ID`).
//!
//! Order: one task per webhook delivers the events one after another; an event is retried until it is
//! delivered or [`Settings::retry_for`] has passed (then it is `failed`, stays in the log for a manual
//! redelivery, and the next event goes). Bounds: [`Settings::concurrency_max`] outbound requests at once (all
//! webhooks), each with a connect and a total timeout, no redirects; a log of the last [`LOG_PER_WEBHOOK_MAX`]
//! deliveries per webhook, in memory (it starts empty after a restart; the outbox and progress do not).
//!
//! Architecture invariant: this crate depends on the desk services and the host's event feed, never on an
//! edge (`otcd-http`); the binary hands it the renderer of the event objects.

use hmac::{Hmac, Mac};
use otcd_core::engine::events::DeskEvent;
use otcd_core::engine::webhooks::{OutboxEntry, OutboxPosition, Webhook, WebhookEventKind};
use otcd_core::engine::{Actor, Command};
use otcd_core::time::TimestampMs;
use otcd_host::events::{EventFilter, SubscriptionEnded};
use otcd_services::webhooks::{DeliveryLog, DeliveryView};
use otcd_services::DeskServices;
use parking_lot::Mutex;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinHandle;

/// Deliveries kept in each webhook's log.
pub const LOG_PER_WEBHOOK_MAX: usize = 1_000;
/// Outbox entries read at once by one webhook's task.
const OUTBOX_BATCH: usize = 256;
/// Longest wait for new events when no wake-up comes (a missed wake-up costs at most this).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Renders an event's `data` object (the same object the stream carries); `None`: not deliverable.
pub type Render = Arc<dyn Fn(&DeskServices, &DeskEvent) -> Option<Value> + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Outbound requests in flight at once, across all webhooks.
    pub concurrency_max: usize,
    pub connect_timeout: Duration,
    /// Whole request, connect to the end of the response headers.
    pub request_timeout: Duration,
    /// How long an event is retried before it is given up (`failed`).
    pub retry_for: Duration,
    pub backoff_first: Duration,
    pub backoff_max: Duration,
    /// How often progress is journaled.
    pub advance_every: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            concurrency_max: 16,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            retry_for: Duration::from_secs(24 * 3_600),
            backoff_first: Duration::from_secs(1),
            backoff_max: Duration::from_secs(3_600),
            advance_every: Duration::from_secs(1),
        }
    }
}

/// The running worker; its log is what `GET /v1/webhooks/{id}/deliveries` shows.
pub struct Webhooks {
    shared: Arc<Shared>,
}

struct Shared {
    desk: Arc<DeskServices>,
    render: Render,
    client: reqwest::Client,
    permits: Semaphore,
    settings: Settings,
    log: Mutex<HashMap<String, VecDeque<Delivery>>>,
    /// Each webhook's position: everything up to it delivered or given up (journaled every `advance_every`).
    progress: Mutex<HashMap<String, OutboxPosition>>,
    /// Woken when the event feed published something.
    wake: Notify,
}

/// Where one webhook's deliveries go.
struct Target {
    webhook_id: String,
    url: String,
    secret: Vec<u8>,
}

#[derive(Clone)]
struct Delivery {
    view: DeliveryView,
    body: Arc<str>,
    target: Arc<Target>,
}

/// What one attempt gave.
enum Attempt {
    Status(u16),
    Failed(String),
}

/// Starts the worker; it stops when `stop` turns true (after journaling its progress once more).
pub fn start(
    desk: Arc<DeskServices>,
    render: Render,
    settings: Settings,
    stop: watch::Receiver<bool>,
) -> Arc<Webhooks> {
    let client = reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(2)
        .user_agent("otcd-webhooks/1")
        .build()
        .expect("the webhook HTTP client builds");
    let shared = Arc::new(Shared {
        desk,
        render,
        client,
        permits: Semaphore::new(settings.concurrency_max.max(1)),
        settings,
        log: Mutex::new(HashMap::new()),
        progress: Mutex::new(HashMap::new()),
        wake: Notify::new(),
    });
    tokio::spawn(wake_on_events(shared.clone(), stop.clone()));
    tokio::spawn(supervise(shared.clone(), stop));
    Arc::new(Webhooks { shared })
}

/// Wakes the webhook tasks whenever the event feed publishes (durable records).
async fn wake_on_events(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let Ok(mut events) = shared.desk.events.subscribe(EventFilter::All, 1_024) else {
            tokio::time::sleep(IDLE_POLL).await;
            continue;
        };
        loop {
            tokio::select! {
                received = events.recv() => match received {
                    Ok(_) => {
                        while events.try_recv().is_some() {}
                        shared.wake.notify_waiters();
                    }
                    Err(SubscriptionEnded::FellBehind) => break,
                    Err(SubscriptionEnded::Closed) => return,
                },
                _ = stop.changed() => return,
            }
        }
    }
}

/// Keeps one task per registered webhook and journals their progress every `advance_every`.
async fn supervise(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut tasks: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut journaled: HashMap<String, OutboxPosition> = HashMap::new();
    let mut tick = tokio::time::interval(shared.settings.advance_every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {
                journal_progress(&shared, &mut journaled).await;
                tasks.into_values().for_each(|task| task.abort());
                return;
            }
        }
        if let Ok(webhooks) = shared.desk.read(|desk| desk.webhooks().cloned().collect::<Vec<_>>()).await {
            reconcile_tasks(&shared, &mut tasks, &mut journaled, webhooks);
        }
        journal_progress(&shared, &mut journaled).await;
    }
}

fn reconcile_tasks(
    shared: &Arc<Shared>,
    tasks: &mut HashMap<String, JoinHandle<()>>,
    journaled: &mut HashMap<String, OutboxPosition>,
    webhooks: Vec<Webhook>,
) {
    let live: std::collections::HashSet<String> = webhooks.iter().map(|webhook| webhook.webhook_id.clone()).collect();
    tasks.retain(|webhook_id, task| {
        let keep = live.contains(webhook_id);
        if !keep {
            task.abort();
            shared.progress.lock().remove(webhook_id);
            shared.log.lock().remove(webhook_id);
            journaled.remove(webhook_id);
        }
        keep
    });
    for webhook in webhooks {
        if tasks.contains_key(&webhook.webhook_id) {
            continue;
        }
        let Some(secret) = shared.desk.webhook_secret(&webhook) else {
            tracing::error!(webhook_id = webhook.webhook_id, "the webhook's secret cannot be opened; not delivering");
            continue;
        };
        journaled.insert(webhook.webhook_id.clone(), webhook.delivered_through);
        let target = Arc::new(Target { webhook_id: webhook.webhook_id.clone(), url: webhook.url.clone(), secret });
        let task = tokio::spawn(run_webhook(shared.clone(), target, webhook.clone()));
        tasks.insert(webhook.webhook_id, task);
    }
}

/// Journals the positions that moved since the last time (one command for all webhooks).
async fn journal_progress(shared: &Shared, journaled: &mut HashMap<String, OutboxPosition>) {
    let moved: Vec<(String, OutboxPosition)> = shared
        .progress
        .lock()
        .iter()
        .filter(|(webhook_id, position)| journaled.get(*webhook_id).is_some_and(|done| *position > done))
        .map(|(webhook_id, position)| (webhook_id.clone(), *position))
        .collect();
    if moved.is_empty() {
        return;
    }
    let command = Command::AdvanceWebhooks { advances: moved.clone() };
    match shared.desk.engine.submit(Actor::default(), command).await {
        Ok(_) => journaled.extend(moved),
        Err(error) => tracing::warn!(%error, "webhook progress not journaled; retrying next interval"),
    }
}

/// Delivers one webhook's events in order, from its journaled position on.
async fn run_webhook(shared: Arc<Shared>, target: Arc<Target>, webhook: Webhook) {
    let mut position = webhook.delivered_through;
    loop {
        // Registered before the read, so an event published meanwhile still wakes this task.
        let woken = shared.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let after = position;
        let entries = match shared.desk.read(move |desk| desk.webhook_outbox_after(after, OUTBOX_BATCH)).await {
            Ok(entries) => entries,
            Err(_) => {
                tokio::time::sleep(IDLE_POLL).await;
                continue;
            }
        };
        if entries.is_empty() {
            let _ = tokio::time::timeout(IDLE_POLL, woken).await;
            continue;
        }
        for entry in entries {
            debug_assert!(entry.position > position, "the outbox is read in order");
            if webhook.wants(&entry.event) {
                deliver(&shared, &target, &entry).await;
            }
            position = entry.position;
            shared.progress.lock().insert(target.webhook_id.clone(), position);
        }
    }
}

/// The stable id of the delivery of `position` to `webhook_id`.
pub fn delivery_id(webhook_id: &str, position: OutboxPosition) -> String {
    let suffix = webhook_id.strip_prefix("wh_").unwrap_or(webhook_id);
    format!("whd_{}_{}_{suffix}", position.seq, position.index)
}

/// Delivers one event, retrying until it is delivered or `retry_for` has passed.
async fn deliver(shared: &Shared, target: &Arc<Target>, entry: &OutboxEntry) {
    let Some(delivery) = new_delivery(shared, target, entry) else { return };
    let id = delivery.view.id.clone();
    shared.remember(delivery.clone());
    let started = tokio::time::Instant::now();
    let mut backoff = shared.settings.backoff_first;
    loop {
        let attempt = shared.attempt(target, &id, &delivery.body).await;
        let give_up = started.elapsed() >= shared.settings.retry_for;
        let retry_at = shared.desk.clock.now().0 + i64::try_from(backoff.as_millis()).unwrap_or(i64::MAX / 2);
        if shared.record(&target.webhook_id, &id, attempt, (!give_up).then_some(TimestampMs(retry_at))) {
            return;
        }
        if give_up {
            tracing::warn!(webhook_id = target.webhook_id, delivery_id = id, "webhook delivery given up");
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(shared.settings.backoff_max);
    }
}

fn new_delivery(shared: &Shared, target: &Arc<Target>, entry: &OutboxEntry) -> Option<Delivery> {
    let kind = WebhookEventKind::of(&entry.event)?;
    let mut data = (shared.render)(&shared.desk, &entry.event)?;
    if let (Some(object), Some(client_id)) = (data.as_object_mut(), entry.event.client_id()) {
        object.entry("client_id").or_insert_with(|| json!(client_id.as_str()));
    }
    let id = delivery_id(&target.webhook_id, entry.position);
    let created_at = format_timestamp(entry.at);
    let body = json!({"id": id, "webhook_id": target.webhook_id, "seq": entry.position.seq, "type": kind.name(),
        "created_at": created_at, "data": data});
    let view = DeliveryView {
        id,
        webhook_id: target.webhook_id.clone(),
        seq: entry.position.seq,
        kind: kind.name(),
        status: "pending",
        attempts: 0,
        last_status_code: None,
        last_error: None,
        next_attempt_at: None,
        delivered_at: None,
        created_at,
    };
    Some(Delivery { view, body: body.to_string().into(), target: target.clone() })
}

impl Shared {
    /// One signed POST: `OTC-WEBHOOK-SIGNATURE` = hex HMAC-SHA256 of `id \n timestamp \n body`.
    async fn attempt(&self, target: &Target, id: &str, body: &str) -> Attempt {
        let Ok(_permit) = self.permits.acquire().await else { return Attempt::Failed("stopping".into()) };
        let timestamp = self.desk.clock.now().0.to_string();
        let signature = sign(&target.secret, id, &timestamp, body);
        let request = self
            .client
            .post(&target.url)
            .header("content-type", "application/json")
            .header("OTC-WEBHOOK-ID", id)
            .header("OTC-WEBHOOK-TIMESTAMP", &timestamp)
            .header("OTC-WEBHOOK-SIGNATURE", signature)
            .body(body.to_owned());
        match request.send().await {
            Ok(response) => Attempt::Status(response.status().as_u16()),
            Err(error) => Attempt::Failed(error_text(&error)),
        }
    }

    fn remember(&self, delivery: Delivery) {
        let mut log = self.log.lock();
        let deliveries = log.entry(delivery.view.webhook_id.clone()).or_default();
        deliveries.retain(|known| known.view.id != delivery.view.id);
        deliveries.push_back(delivery);
        while deliveries.len() > LOG_PER_WEBHOOK_MAX {
            deliveries.pop_front();
        }
    }

    /// Records an attempt in the log; true when it delivered. `retry_at`: when the next attempt is, if any.
    fn record(&self, webhook_id: &str, id: &str, attempt: Attempt, retry_at: Option<TimestampMs>) -> bool {
        let delivered = matches!(attempt, Attempt::Status(status) if (200..300).contains(&status));
        let now = self.desk.clock.now();
        let mut log = self.log.lock();
        let Some(delivery) = log.get_mut(webhook_id).and_then(|log| log.iter_mut().find(|known| known.view.id == id))
        else {
            return delivered;
        };
        let view = &mut delivery.view;
        view.attempts = view.attempts.saturating_add(1);
        match attempt {
            Attempt::Status(status) => {
                view.last_status_code = Some(status);
                view.last_error = None;
            }
            Attempt::Failed(error) => view.last_error = Some(error),
        }
        if delivered {
            view.status = "delivered";
            view.delivered_at = Some(format_timestamp(now));
            view.next_attempt_at = None;
        } else if let Some(retry_at) = retry_at {
            view.status = "pending";
            view.next_attempt_at = Some(format_timestamp(retry_at));
        } else {
            view.status = "failed";
            view.next_attempt_at = None;
        }
        delivered
    }
}

impl DeliveryLog for Webhooks {
    fn deliveries(&self, webhook_id: &str, limit: usize, cursor: Option<&str>) -> (Vec<DeliveryView>, Option<String>) {
        let log = self.shared.log.lock();
        let Some(deliveries) = log.get(webhook_id) else { return (Vec::new(), None) };
        let mut newest_first = deliveries.iter().rev().map(|delivery| &delivery.view).peekable();
        if let Some(cursor) = cursor {
            newest_first.by_ref().find(|view| view.id == cursor);
        }
        let items: Vec<DeliveryView> = newest_first.by_ref().take(limit).cloned().collect();
        let next = match (newest_first.peek(), items.last()) {
            (Some(_), Some(last)) => Some(last.id.clone()),
            _ => None,
        };
        (items, next)
    }

    fn redeliver(&self, webhook_id: &str, delivery_id: &str) -> Option<DeliveryView> {
        let delivery = {
            let mut log = self.shared.log.lock();
            let delivery = log.get_mut(webhook_id)?.iter_mut().find(|known| known.view.id == delivery_id)?;
            if delivery.view.status != "delivered" {
                delivery.view.status = "pending";
            }
            delivery.clone()
        };
        let shared = self.shared.clone();
        let view = delivery.view.clone();
        tokio::spawn(async move {
            let attempt = shared.attempt(&delivery.target, &delivery.view.id, &delivery.body).await;
            // A manual redelivery is one attempt: a failed one leaves the delivery failed (or pending when the
            // worker still retries it).
            let retrying = delivery.view.next_attempt_at.is_some().then(|| shared.desk.clock.now());
            shared.record(&delivery.view.webhook_id, &delivery.view.id, attempt, retrying);
        });
        Some(view)
    }
}

/// Lowercase hex HMAC-SHA256 of `id \n timestamp \n body`, keyed with the secret's bytes.
pub fn sign(secret: &[u8], id: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b"\n");
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The error and its causes, one line (reqwest's own text names only the outermost).
fn error_text(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(500).collect()
}

/// RFC 3339 UTC with milliseconds, as the API writes times.
fn format_timestamp(at: TimestampMs) -> String {
    let nanoseconds = i128::from(at.0) * 1_000_000;
    let Ok(moment) = time::OffsetDateTime::from_unix_timestamp_nanos(nanoseconds) else { return "invalid".into() };
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    moment.format(&format).unwrap_or_else(|_| "invalid".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_id_timestamp_and_body() {
        // Checked by hand: printf 'whd_1\n1700000000000\n{}' | openssl dgst -sha256 -hmac whsec_test
        let signature = sign(b"whsec_test", "whd_1", "1700000000000", "{}");
        assert_eq!(signature, "fecd6027f157c2d2c16c756c2c2fbff1fef7bb6835ab2a6cbfaefb198b67c8bd");
        assert_eq!(delivery_id("wh_abc", OutboxPosition { seq: 7, index: 2 }), "whd_7_2_abc");
    }
}

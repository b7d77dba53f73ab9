//! The OpenAPI document as served at `/openapi.json` and printed by `otcd openapi`: utoipa's document from the
//! route annotations, then completed for client generators: the signing scheme (one `apiKey` per header, with
//! the rule), the security of every signed operation, `servers`, problem+json error responses on every
//! operation, a schema for every response with a body, enums for the closed vocabularies (sides, order types,
//! time in force, statuses, error codes), the stream's upgrade and the webhook deliveries (`webhooks`).
//!
//! Why a pass over the JSON rather than utoipa annotations: these are rules over every operation and schema
//! (a forgotten annotation would silently drop one), and utoipa 5 has no `webhooks` object.

use serde_json::{json, Map, Value};
use utoipa::OpenApi;

/// Every stable error code (docs/api.md, Errors).
pub const ERROR_CODES: [&str; 24] = [
    "invalid_request",
    "instrument_unknown",
    "unauthenticated",
    "forbidden",
    "kyc_required",
    "jurisdiction_restricted",
    "sanctions_hit",
    "not_found",
    "quote_not_found",
    "method_not_allowed",
    "conflict",
    "quote_expired",
    "quote_already_used",
    "order_not_cancelable",
    "trading_halted",
    "payload_too_large",
    "limit_exceeded",
    "insufficient_funds",
    "slippage_exceeded",
    "destination_not_approved",
    "rate_limited",
    "internal",
    "price_unavailable",
    "unavailable",
];

/// Endpoints that take no signature.
const PUBLIC_PATHS: [&str; 7] =
    ["/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/instruments", "/v1/assets", "/v1/admin/cluster"];

const SIGNING_RULE: &str = "Signed requests carry OTC-KEY (the key id), OTC-TIMESTAMP (Unix milliseconds, within \
30 s of the desk's clock) and OTC-SIGNATURE over the payload `timestamp\\nMETHOD\\npath\\nbody` (path with its \
query string, body as sent, empty for none), or `timestamp\\nMETHOD\\npath\\nbody\\nnonce` when OTC-NONCE is \
sent: for an HMAC key the lowercase hex HMAC-SHA256 of the payload keyed with the secret, for an Ed25519 key the \
base64 signature. A signature is accepted once. See docs/api.md, Authentication.";

/// The complete document.
pub fn document() -> Value {
    let mut openapi = crate::routes::ApiDoc::openapi();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut document = serde_json::to_value(&openapi).expect("the OpenAPI document serializes");
    document["servers"] = json!([{"url": "http://127.0.0.1:8080", "description": "a desk started with `otcd serve` (its default address)"}]);
    add_security_schemes(&mut document);
    add_stream(&mut document);
    complete_operations(&mut document);
    add_enums(&mut document);
    add_webhooks(&mut document);
    document
}

fn add_security_schemes(document: &mut Value) {
    let schemes = &mut document["components"]["securitySchemes"];
    let header = |name: &str, what: &str| json!({"type": "apiKey", "in": "header", "name": name, "description": format!("{what} {SIGNING_RULE}")});
    schemes["otc_key"] = header("OTC-KEY", "The API key id.");
    schemes["otc_timestamp"] = header("OTC-TIMESTAMP", "Unix milliseconds when the request was signed.");
    schemes["otc_signature"] = header("OTC-SIGNATURE", "The request signature.");
    schemes["otc_nonce"] = header("OTC-NONCE", "Optional: 1-64 of [A-Za-z0-9_-], signed as a fifth line.");
    schemes["session_token"]["description"] =
        json!("A session token from POST /v1/sessions (web pages): `Authorization: Bearer <token>`.");
}

fn signed_security() -> Value {
    json!([
        {"otc_key": [], "otc_timestamp": [], "otc_signature": [], "otc_nonce": []},
        {"otc_key": [], "otc_timestamp": [], "otc_signature": []},
        {"session_token": []}
    ])
}

fn add_stream(document: &mut Value) {
    document["paths"]["/v1/stream"] = json!({"get": {
        "tags": ["stream"],
        "operationId": "stream",
        "summary": "The WebSocket stream (quotes, orders, trades, balances): upgrade with a signed GET; the \
    messages are in docs/api.md, The stream.",
        "responses": {"101": {"description": "switched to the WebSocket protocol"}}
    }});
}

/// Security, error responses and response schemas for every operation.
fn complete_operations(document: &mut Value) {
    let problem = json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
    let paths = document["paths"].as_object_mut().expect("paths");
    for (path, item) in paths.iter_mut() {
        let public = PUBLIC_PATHS.contains(&path.as_str());
        for (_, operation) in item.as_object_mut().expect("a path item").iter_mut() {
            if !public {
                operation["security"] = signed_security();
            }
            let responses = operation["responses"].as_object_mut().expect("responses");
            for (status, response) in responses.iter_mut() {
                if status.starts_with('4') || status.starts_with('5') {
                    response["content"] = problem.clone();
                } else if status.starts_with('2') && status != "204" {
                    complete_content(response);
                }
                if response["description"].as_str().is_none_or(str::is_empty) {
                    response["description"] = json!(default_description(status));
                }
            }
            let errors: &[&str] =
                if public { &["429", "500", "503"] } else { &["400", "401", "403", "404", "409", "429", "500", "503"] };
            for status in errors {
                responses
                    .entry(*status)
                    .or_insert_with(|| json!({"description": default_description(status), "content": problem.clone()}));
            }
            responses.insert(
                "default".into(),
                json!({"description": "an error (problem details with a stable code)", "content": problem.clone()}),
            );
        }
    }
}

/// A schema for every media type of a success response (a generic object where the route renders free JSON).
fn complete_content(response: &mut Value) {
    if response.get("content").is_none() {
        response["content"] = json!({"application/json": {}});
    }
    for (media, content) in response["content"].as_object_mut().expect("content").iter_mut() {
        if content.get("schema").is_none() {
            content["schema"] = if media.starts_with("text/") {
                json!({"type": "string"})
            } else {
                json!({"type": "object", "description": "A JSON object; its fields are described in docs/api.md."})
            };
        }
    }
}

fn default_description(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "created",
        "202" => "accepted",
        "204" => "no content",
        "400" => "invalid request (`invalid_request` and the other 400 codes)",
        "401" => "unauthenticated: a missing, expired, reused or wrong signature",
        "403" => "forbidden: the key lacks the scope, or the client may not do this",
        "404" => "not found",
        "409" => "conflict with the desk's state",
        "429" => "rate limited; Retry-After says when to retry",
        "500" => "internal error",
        "503" => "unavailable; Retry-After says when to retry",
        _ => "see docs/api.md",
    }
}

/// The closed vocabularies, set on the schema properties that carry them.
fn add_enums(document: &mut Value) {
    let statuses: [(&str, &[&str]); 4] = [
        ("OrderView", &["open", "partially_filled", "filled", "cancelled", "expired"]),
        ("WithdrawalView", &["pending", "submitted", "completed", "failed"]),
        ("DestinationView", &["approved", "pending_review", "rejected"]),
        ("InstructionView", &["pending", "completed", "failed"]),
    ];
    let schemas = document["components"]["schemas"].as_object_mut().expect("schemas");
    for (name, schema) in schemas.iter_mut() {
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else { continue };
        for (property, value) in properties.iter_mut() {
            let values: Option<&[&str]> = match property.as_str() {
                "side" => Some(&["buy", "sell"]),
                "time_in_force" => Some(&["ioc", "fok", "gtc", "gtd"]),
                "order_type" => Some(&["quote", "market", "limit"]),
                "type" if name == "OrderView" => Some(&["quote", "market", "limit"]),
                "kyc_status" => Some(&["pending", "approved", "rejected"]),
                "code" if name == "Problem" => Some(&ERROR_CODES),
                "status" => statuses.iter().find(|(schema, _)| schema == name).map(|(_, values)| *values),
                _ => None,
            };
            if let Some(values) = values {
                set_enum(value, values);
            }
        }
    }
}

/// Sets `enum` on a string (or nullable string) schema; leaves any other schema alone.
fn set_enum(schema: &mut Value, values: &[&str]) {
    let nullable = match &schema["type"] {
        Value::String(kind) if kind == "string" => false,
        Value::Array(kinds) if kinds.contains(&json!("string")) => kinds.contains(&json!("null")),
        _ => return,
    };
    let mut list: Vec<Value> = values.iter().map(|value| json!(value)).collect();
    if nullable {
        list.push(Value::Null);
    }
    schema["enum"] = Value::Array(list);
}

/// The delivery a webhook receives (OpenAPI 3.1 `webhooks`).
fn add_webhooks(document: &mut Value) {
    let kinds = ["order", "trade", "withdrawal", "settlement", "balance"];
    document["components"]["schemas"]["WebhookDelivery"] = json!({
        "type": "object",
        "required": ["id", "webhook_id", "seq", "type", "created_at", "data"],
        "properties": {
            "id": {"type": "string", "description": "The delivery id (also OTC-WEBHOOK-ID); stable across retries: dedupe on it."},
            "webhook_id": {"type": "string"},
            "seq": {"type": "integer", "format": "int64", "minimum": 0, "description": "The journal seq of the change."},
            "type": {"type": "string", "enum": kinds},
            "created_at": {"type": "string", "description": "When the change happened (RFC 3339)."},
            "data": {"type": "object", "description": "The object the stream's message carries (the order, trade, withdrawal, settlement instruction or balance) plus client_id."}
        }
    });
    let header = |name: &str, description: &str| json!({"name": name, "in": "header", "required": true, "description": description, "schema": {"type": "string"}});
    let mut webhooks = Map::new();
    webhooks.insert("delivery".into(), json!({"post": {
        "operationId": "webhook_delivery",
        "summary": "A change the webhook asked for, POSTed to its URL; any 2xx answer means delivered.",
        "parameters": [
            header("OTC-WEBHOOK-ID", "The delivery id (the body's id)."),
            header("OTC-WEBHOOK-TIMESTAMP", "Unix milliseconds when this attempt was signed."),
            header("OTC-WEBHOOK-SIGNATURE", "Lowercase hex HMAC-SHA256 of `id\\ntimestamp\\nraw body`, keyed with the webhook's secret (the whole `whsec_...` string).")
        ],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookDelivery"}}}},
        "responses": {"200": {"description": "delivered (any 2xx)"}, "default": {"description": "not delivered: retried with backoff for 24 hours"}}
    }}));
    document["webhooks"] = Value::Object(webhooks);
}

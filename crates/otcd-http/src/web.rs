//! The web faces, embedded in the binary: the operations console at `/` and static assets under `/ui/` (console
//! script and styles, the embeddable Web Components, the components' example page). Plain modern JavaScript
//! modules and hand-written SVG charts, no build step: the files under `crates/otcd-http/web/` are served as they
//! are.
//!
//! Every page gets a strict Content-Security-Policy (scripts and styles only from this origin, no inline code,
//! connections only to this origin and its WebSocket), `nosniff`, `no-referrer`, and `Cache-Control: no-cache` with
//! an `ETag` (browsers revalidate, so an upgraded desk never runs stale scripts).

use crate::problem::ApiError;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset { path: $path, content_type: $content_type, body: include_bytes!(concat!("../web/", $path)) }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("console/index.html", HTML),
    asset!("console/console.js", JS),
    asset!("console/charts.js", JS),
    asset!("console/console.css", CSS),
    asset!("components/otcd-components.js", JS),
    asset!("components/format.js", JS),
    asset!("example.html", HTML),
    asset!("example.js", JS),
    asset!("example.css", CSS),
    asset!("favicon.svg", "image/svg+xml"),
];

fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS.iter().map(|asset| format!("\"{}\"", hex::encode(&Sha256::digest(asset.body)[..12]))).collect()
    })
}

fn serve(path: &str, request_headers: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|asset| asset.path == path) else {
        return ApiError::not_found("no such file").into_response();
    };
    let asset = &ASSETS[index];
    let etag = &etags()[index];
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::ETAG, HeaderValue::from_str(etag).expect("hex"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if asset.path.starts_with("components/") {
        // Host applications on other origins load the components as module scripts, which needs CORS.
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    let unchanged = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|candidate| candidate.trim() == etag));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (StatusCode::OK, headers, asset.body).into_response()
}

/// `GET /`: the operations console.
pub async fn console(headers: HeaderMap) -> Response {
    serve("console/index.html", &headers)
}

/// `GET /ui/{path}`: console and component assets, and the components' example page.
pub async fn ui(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// CORS for the API, so that components embedded in a host application on another origin can call the desk with
/// a session token. Safe with a wildcard origin because otcd never authenticates with ambient credentials
/// (cookies): every request carries its own signature or bearer token.
pub async fn cors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let api = request.uri().path().starts_with("/v1/");
    let cross_origin = request.headers().contains_key(header::ORIGIN);
    if api && cross_origin && request.method() == Method::OPTIONS {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"));
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, otc-key, otc-timestamp, otc-signature"),
        );
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        return (StatusCode::NO_CONTENT, headers).into_response();
    }
    let mut response = next.run(request).await;
    if api && cross_origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("retry-after"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_known_type_and_no_inline_script() {
        for asset in ASSETS {
            assert!([HTML, JS, CSS, "image/svg+xml"].contains(&asset.content_type), "{}", asset.path);
            if asset.content_type == HTML {
                let text = std::str::from_utf8(asset.body).expect("utf-8");
                for forbidden in ["<script>", "<style", " style=", " onclick=", " onload=", "javascript:"] {
                    assert!(!text.contains(forbidden), "{} has inline code: {forbidden}", asset.path);
                }
            }
        }
    }
}

//! The console and component assets: served from the binary with types, caching and a strict CSP; the OpenAPI
//! document lists the new endpoints; cross-origin API calls get CORS answers.

use otcd_testkit::http::assert_problem;
use otcd_testkit::process::TestDesk;

#[test]
fn console_and_components_are_served_with_a_strict_policy() {
    let desk = TestDesk::relaxed();
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/ui/console/console.js", "text/javascript; charset=utf-8"),
        ("/ui/console/charts.js", "text/javascript; charset=utf-8"),
        ("/ui/console/console.css", "text/css; charset=utf-8"),
        ("/ui/components/otcd-components.js", "text/javascript; charset=utf-8"),
        ("/ui/example.html", "text/html; charset=utf-8"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ] {
        let reply = desk.send("GET", path, "", &[]);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
        assert_eq!(reply.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"), "{path}");
        let policy = reply.header("content-security-policy").unwrap_or_default().to_owned();
        assert!(policy.contains("script-src 'self'") && policy.contains("default-src 'none'"), "{path}: {policy}");
        assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "{path}: {policy}");
        // Revalidation: the same ETag answers 304.
        let etag = reply.header("etag").expect("an ETag").to_owned();
        let again = desk.send("GET", path, "", &[("If-None-Match".to_owned(), etag)]);
        assert_eq!(again.status, 304, "{path}");
    }
    let page = desk.send("GET", "/", "", &[]).text;
    assert!(page.contains("Operations console") && page.contains("/ui/console/console.js"), "{page}");
    assert_problem(&desk.send("GET", "/ui/nothing.js", "", &[]), 404, "not_found");
    assert_problem(&desk.send("GET", "/ui/../Cargo.toml", "", &[]), 404, "not_found");
    // Components are loadable as module scripts from another origin.
    let script = desk.send("GET", "/ui/components/otcd-components.js", "", &[]);
    assert_eq!(script.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn the_api_answers_cross_origin_requests_and_documents_sessions() {
    let desk = TestDesk::relaxed();
    let origin = ("Origin".to_owned(), "https://app.example.com".to_owned());
    let preflight = desk.send(
        "OPTIONS",
        "/v1/rfq",
        "",
        &[origin.clone(), ("Access-Control-Request-Method".to_owned(), "POST".to_owned())],
    );
    assert_eq!(preflight.status, 204, "{}", preflight.text);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert!(preflight.header("access-control-allow-headers").unwrap_or_default().contains("authorization"));
    let catalog = desk.send("GET", "/v1/instruments", "", &[origin]);
    assert_eq!(catalog.header("access-control-allow-origin"), Some("*"));

    let document = desk.send("GET", "/openapi.json", "", &[]).body;
    for path in ["/v1/sessions", "/v1/admin/console/trades", "/v1/admin/desk/exposure"] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
    assert!(document["components"]["securitySchemes"]["session_token"].is_object());
}

//! Every route the API router serves is in `/api/openapi.json`, and every documented operation
//! is served. Routes are registered with their descriptions (utoipa-axum's `routes!`), so a
//! route without one cannot be written; these tests ask the real router about each path.

use std::{collections::BTreeSet, time::Duration};

use axum::{
    body::Body,
    http::{Method, Request, StatusCode},
};
use backend::{AppState, Config, app};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A documented operation: `(METHOD, /api/path)`.
type Route = (String, String);

/// The full configuration: with the debug routes.
fn with_debug_routes() -> Config {
    Config {
        debug_routes: true,
        ..Config::default()
    }
}

fn routes_in_spec() -> BTreeSet<Route> {
    let doc = backend::openapi_spec(true);
    let mut routes = BTreeSet::new();
    for (path, item) in doc.paths.paths.clone().iter_mut() {
        let methods = [
            ("GET", item.get.is_some()),
            ("PUT", item.put.is_some()),
            ("POST", item.post.is_some()),
            ("DELETE", item.delete.is_some()),
            ("PATCH", item.patch.is_some()),
        ];
        for (method, present) in methods {
            if present {
                routes.insert((method.to_owned(), path.clone()));
            }
        }
    }
    routes
}

/// Routes are registered with their descriptions (`routes!` in each module's `router()`), so
/// the router serves no path the description lacks. This checks the other half on the real
/// router: a documented path answers no method it does not document (a 405, in JSON), except
/// the catch-alls passed on "any method" to a balancer or sidecar.
#[tokio::test]
async fn documented_paths_serve_no_undocumented_method() {
    let router = app(AppState::new(with_debug_routes()));
    let spec = routes_in_spec();
    assert!(spec.len() > 25, "{} operations", spec.len());
    let paths: BTreeSet<&String> = spec.iter().map(|(_, p)| p).collect();
    let doc = backend::openapi_spec(true);
    for path in paths {
        let item = &doc.paths.paths[path];
        let any_method = [&item.get, &item.post].into_iter().flatten().any(|op| {
            op.description
                .as_deref()
                .is_some_and(|d| d.contains("any method"))
        });
        if any_method {
            continue;
        }
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
            if spec.contains(&(method.to_owned(), path.clone())) {
                continue;
            }
            let uri = path
                .replace("{run}", "r1")
                .replace("{id}", "x")
                .replace("{path}", "x");
            let request = Request::builder()
                .method(method)
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {uri} is served but not documented"
            );
        }
    }
}

/// Asks the real router for every documented operation (path parameters filled with `x`): none
/// may fall through to the API's 404 fallback or get a 405, and every error is JSON.
#[tokio::test]
async fn every_documented_operation_is_served() {
    let router = app(AppState::new(with_debug_routes()));
    for (method, path) in routes_in_spec() {
        let uri = path
            .replace("{run}", "r1")
            .replace("{id}", "x")
            .replace("{path}", "x");
        let request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let response =
            tokio::time::timeout(Duration::from_secs(10), router.clone().oneshot(request))
                .await
                .unwrap_or_else(|_| panic!("{method} {uri}: no answer within 10 s"))
                .unwrap();
        let status = response.status();
        if status.is_success() {
            // A stream (SSE) would never end: its head is the answer.
            continue;
        }
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}: {body}"
        );
        assert!(
            !body.contains("no such API endpoint"),
            "{method} {uri} is documented but not routed"
        );
        if status.is_client_error() || status.is_server_error() {
            assert!(
                content_type.starts_with("application/json"),
                "{method} {uri}: {status} with {content_type:?}: {body}"
            );
        }
    }
}

/// `GET /api/debug/stats` and `POST /api/bench/bare` are for tests and benchmarks: without
/// `--debug-routes` they are unknown API paths, as the description says; with it, served.
#[tokio::test]
async fn debug_routes_are_served_and_described_only_with_the_flag() {
    for debug_routes in [false, true] {
        let router = app(AppState::new(Config {
            debug_routes,
            ..Config::default()
        }));
        let ask = |method: Method, uri: &str, body: &'static str| {
            Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap()
        };
        let stats = router
            .clone()
            .oneshot(ask(Method::GET, "/api/debug/stats", ""))
            .await
            .unwrap();
        let bare = router
            .clone()
            .oneshot(ask(Method::POST, "/api/bench/bare", "{}"))
            .await
            .unwrap();
        let spec = router
            .clone()
            .oneshot(ask(Method::GET, "/api/openapi.json", ""))
            .await
            .unwrap();
        let spec: serde_json::Value =
            serde_json::from_slice(&spec.into_body().collect().await.unwrap().to_bytes()).unwrap();
        let described = |path: &str| spec["paths"].get(path).is_some();
        assert_eq!(
            (described("/api/debug/stats"), described("/api/bench/bare")),
            (debug_routes, debug_routes),
            "described with --debug-routes only"
        );
        assert!(described("/api/health"));
        if debug_routes {
            assert_eq!(stats.status(), StatusCode::OK);
            assert_eq!(bare.status(), StatusCode::OK);
            continue;
        }
        for response in [stats, bare] {
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(error["error"], "no such API endpoint");
        }
    }
}

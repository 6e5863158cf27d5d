//! Every route the API router serves is in `/api/openapi.json`, and every documented operation
//! is served. The route list is read from the code itself: the modules `app()` merges (from
//! `lib.rs`) and the `.route(…)` calls in each, so a new route without a description fails here.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::Duration,
};

use axum::{
    body::Body,
    http::{Method, Request, StatusCode},
};
use backend::{AppState, Config, app};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A route as the code declares it: `(METHOD, /api/path)`, `ANY` for `any(…)`.
type Route = (String, String);

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The text of `s` from just after `open` (an opening bracket at `start`) to its match.
fn balanced(s: &str, start: usize) -> &str {
    let mut depth = 0;
    for (i, c) in s[start..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &s[start + 1..start + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced brackets in {s:?}")
}

/// The `.route("path", methods)` calls of one source file.
fn routes_in(source: &str) -> Vec<Route> {
    let mut routes = Vec::new();
    for (at, _) in source.match_indices(".route(") {
        let call = balanced(source, at + ".route".len());
        let call = call.trim_start();
        let Some(rest) = call.strip_prefix('"') else {
            panic!("a route whose path is not a literal: {call}")
        };
        let end = rest.find('"').expect("closing quote");
        let path = format!("/api{}", rest[..end].replace("{*", "{"));
        let methods = &rest[end + 1..];
        let mut found = Vec::new();
        for (token, method) in [
            ("get(", "GET"),
            ("post(", "POST"),
            ("put(", "PUT"),
            ("delete(", "DELETE"),
            ("patch(", "PATCH"),
            ("any(", "ANY"),
            // A WebSocket upgrade: GET (HTTP/1.1) or CONNECT (HTTP/2, which OpenAPI cannot name).
            ("websocket_methods()", "GET"),
        ] {
            for (i, _) in methods.match_indices(token) {
                let before = methods[..i].chars().next_back();
                if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    found.push(method.to_owned());
                }
            }
        }
        assert!(
            !found.is_empty(),
            "no method found in route {path}: {methods}"
        );
        routes.extend(found.into_iter().map(|m| (m, path.clone())));
    }
    routes
}

/// Every route `app()` serves under `/api`: `lib.rs`'s own and those of each merged module
/// (a module's router may merge others, as `patterns::router()` merges each demo's).
fn routes_in_code() -> BTreeSet<Route> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let app_fn = &lib[lib.find("pub fn app(").expect("app() in lib.rs")..];
    let app_fn = &app_fn[..app_fn.find("\n}\n").expect("end of app()")];
    let mut routes: BTreeSet<Route> = routes_in(app_fn).into_iter().collect();
    let merged = merged_routes(app_fn, "", &mut routes);
    assert!(merged >= 10, "only {merged} merged routers found in app()");
    routes
}

/// Adds the routes of every `.merge(module::router())` in `source` (modules relative to
/// `base`, a folder under `src`), recursively; returns how many module routers were merged.
fn merged_routes(source: &str, base: &str, routes: &mut BTreeSet<Route>) -> usize {
    let mut merged = 0;
    for (at, _) in source.match_indices(".merge(") {
        let call = balanced(source, at + ".merge".len());
        let module = call
            .strip_suffix("::router()")
            .unwrap_or_else(|| panic!("merge of something other than a module router: {call}"));
        let path = format!("{base}{}", module.replace("::", "/"));
        let file = [
            src().join(format!("{path}.rs")),
            src().join(format!("{path}/mod.rs")),
        ]
        .into_iter()
        .find(|f| f.exists())
        .unwrap_or_else(|| panic!("no source file for module {module}"));
        let source = std::fs::read_to_string(&file).unwrap();
        let found = routes_in(&source);
        let inner = if file.ends_with("mod.rs") {
            merged_routes(&source, &format!("{path}/"), routes)
        } else {
            0
        };
        assert!(
            !found.is_empty() || inner > 0,
            "{} declares no route",
            file.display()
        );
        routes.extend(found);
        merged += 1 + inner;
    }
    merged
}

fn routes_in_spec() -> BTreeSet<Route> {
    let doc = backend::openapi_spec();
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

#[test]
fn every_route_in_the_router_is_in_the_spec_and_back() {
    let code = routes_in_code();
    let spec = routes_in_spec();
    let mut missing = Vec::new();
    for (method, path) in &code {
        let documented = if method == "ANY" {
            spec.iter().any(|(_, p)| p == path)
        } else {
            spec.contains(&(method.clone(), path.clone()))
        };
        if !documented {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from the OpenAPI description: {missing:?}"
    );
    let extra: Vec<_> = spec
        .iter()
        .filter(|(m, p)| {
            !code.contains(&(m.clone(), p.clone())) && !code.contains(&("ANY".into(), p.clone()))
        })
        .collect();
    assert!(
        extra.is_empty(),
        "documented but not in the router: {extra:?}"
    );
}

/// Asks the real router for every documented operation (path parameters filled with `x`): none
/// may fall through to the API's 404 fallback or get a 405, and every error is JSON.
#[tokio::test]
async fn every_documented_operation_is_served() {
    let router = app(AppState::new(Config::default()));
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

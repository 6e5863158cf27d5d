//! The built frontend as a browser on a real network gets it: compressed copies by
//! `Accept-Encoding`, hashed assets cached for a year, the page revalidated, security headers kept.

use std::path::PathBuf;

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{HeaderMap, Request, StatusCode, header},
};
use backend::{AppState, Config, app};
use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

const INLINE_SCRIPT: &str = "import init from '/app-0123abcd.js'; await init();";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A dist like `make frontend` leaves: a hashed script with its brotli and gzip copies (their
/// bytes tell which file was sent), a hashed stylesheet without copies, an unhashed file and
/// the page. Removed on drop.
struct Dist(PathBuf);

impl Dist {
    fn new(name: &str) -> Dist {
        let dir =
            std::env::temp_dir().join(format!("patternscope-static-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (file, bytes) in [
            ("app-0123abcd.js", &b"console.log('identity')"[..]),
            ("app-0123abcd.js.br", b"\x0b\x8b\x80brotli bytes"),
            ("app-0123abcd.js.gz", b"\x1f\x8bgzip bytes"),
            ("style-89abcdef01234567.css", b"p { margin: 0 }"),
            ("robots.txt", b"User-agent: *"),
        ] {
            std::fs::write(dir.join(file), bytes).unwrap();
        }
        let page = format!(
            "<!doctype html><title>app</title><script type=module>{INLINE_SCRIPT}</script>"
        );
        std::fs::write(dir.join("index.html"), page).unwrap();
        Dist(dir)
    }

    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.0.join(name)).unwrap()
    }

    fn app(&self) -> Router {
        app(AppState::new(Config {
            dist: Some(self.0.clone()),
            ..Config::default()
        }))
    }
}

impl Drop for Dist {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn get(
    router: &Router,
    path: &str,
    headers: &[(header::HeaderName, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, headers, body.to_vec())
}

fn value(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

fn varies_by_encoding(headers: &HeaderMap) -> bool {
    headers.get_all(header::VARY).iter().any(|v| {
        v.to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("accept-encoding")
    })
}

#[tokio::test]
async fn the_preferred_compressed_copy_is_sent_when_accepted() {
    let dist = Dist::new("encodings");
    let router = dist.app();
    for (accept, encoding, file) in [
        (
            Some("gzip, deflate, br, zstd"),
            Some("br"),
            "app-0123abcd.js.br",
        ),
        (Some("br"), Some("br"), "app-0123abcd.js.br"),
        (Some("gzip"), Some("gzip"), "app-0123abcd.js.gz"),
        (Some("br;q=0, gzip"), Some("gzip"), "app-0123abcd.js.gz"),
        (Some("identity"), None, "app-0123abcd.js"),
        (None, None, "app-0123abcd.js"),
    ] {
        let headers: Vec<_> = accept
            .map(|a| (header::ACCEPT_ENCODING, a))
            .into_iter()
            .collect();
        let (status, headers, body) = get(&router, "/app-0123abcd.js", &headers).await;
        assert_eq!(status, StatusCode::OK, "{accept:?}");
        assert_eq!(
            value(&headers, header::CONTENT_ENCODING),
            encoding,
            "{accept:?}"
        );
        assert_eq!(body, dist.file(file), "{accept:?}");
        assert_eq!(
            value(&headers, header::CONTENT_LENGTH),
            Some(body.len().to_string().as_str()),
            "{accept:?}"
        );
        // The type of what was compressed, not of a `.br` file.
        assert!(
            value(&headers, header::CONTENT_TYPE)
                .unwrap()
                .contains("javascript"),
            "{accept:?}"
        );
        assert!(varies_by_encoding(&headers), "{accept:?}");
    }

    // A file without copies is sent as it is, whatever the browser accepts.
    let (status, headers, body) = get(
        &router,
        "/style-89abcdef01234567.css",
        &[(header::ACCEPT_ENCODING, "gzip, br")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(value(&headers, header::CONTENT_ENCODING), None);
    assert_eq!(body, dist.file("style-89abcdef01234567.css"));
}

#[tokio::test]
async fn hashed_assets_are_immutable_and_everything_else_is_revalidated() {
    let dist = Dist::new("cache");
    let router = dist.app();
    let br = [(header::ACCEPT_ENCODING, "br")];
    for (path, policy) in [
        ("/app-0123abcd.js", IMMUTABLE),
        ("/style-89abcdef01234567.css", IMMUTABLE),
        ("/", "no-cache"),
        ("/index.html", "no-cache"),
        ("/demo/sse", "no-cache"),
        ("/robots.txt", "no-cache"),
        // An asset of an older build, gone: the page answers, and must not stick for a year.
        ("/app-fedcba98.js", "no-cache"),
    ] {
        let (status, headers, _) = get(&router, path, &br).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            value(&headers, header::CACHE_CONTROL),
            Some(policy),
            "{path}"
        );
        assert!(varies_by_encoding(&headers), "{path}");
    }
    let (_, headers, body) = get(&router, "/app-fedcba98.js", &br).await;
    assert_eq!(body, dist.file("index.html"));
    assert!(
        value(&headers, header::CONTENT_TYPE)
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn the_page_answers_a_conditional_request_with_not_modified() {
    let dist = Dist::new("conditional");
    let router = dist.app();
    for path in ["/", "/index.html", "/demo/sse", "/app-0123abcd.js"] {
        let (status, headers, _) = get(&router, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let last_modified = value(&headers, header::LAST_MODIFIED)
            .unwrap_or_else(|| panic!("{path}: no Last-Modified"))
            .to_owned();
        let (status, headers, body) = get(
            &router,
            path,
            &[(header::IF_MODIFIED_SINCE, last_modified.as_str())],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(body.is_empty(), "{path}");
        let policy = if path.contains("0123abcd") {
            IMMUTABLE
        } else {
            "no-cache"
        };
        assert_eq!(
            value(&headers, header::CACHE_CONTROL),
            Some(policy),
            "{path}"
        );
        // A copy cached before the page last changed is sent again in full.
        let (status, _, body) = get(
            &router,
            path,
            &[(header::IF_MODIFIED_SINCE, "Thu, 01 Jan 1970 00:00:00 GMT")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!body.is_empty(), "{path}");
    }
}

#[tokio::test]
async fn static_answers_keep_the_security_headers() {
    let dist = Dist::new("security");
    let router = dist.app();
    let script_hash = format!(
        "'sha256-{}'",
        STANDARD.encode(Sha256::digest(INLINE_SCRIPT))
    );
    for path in ["/", "/demo/sse", "/app-0123abcd.js", "/app-fedcba98.js"] {
        let (_, headers, _) = get(&router, path, &[(header::ACCEPT_ENCODING, "br")]).await;
        let csp = value(&headers, header::CONTENT_SECURITY_POLICY)
            .unwrap_or_else(|| panic!("{path}: no Content-Security-Policy"));
        assert!(csp.contains(&script_hash), "{path}: {csp}");
        assert_eq!(
            value(&headers, header::X_CONTENT_TYPE_OPTIONS),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            value(&headers, header::X_FRAME_OPTIONS),
            Some("DENY"),
            "{path}"
        );
    }
    // API answers are not static files: no year-long caching, no Vary from this layer.
    let (_, headers, _) = get(&router, "/api/health", &[]).await;
    assert_ne!(value(&headers, header::CACHE_CONTROL), Some(IMMUTABLE));
    assert!(!varies_by_encoding(&headers));
}

#[tokio::test]
async fn a_page_of_the_split_build_says_which_chunks_to_preload_and_no_other_page_does() {
    let dist = Dist::new("preload");
    std::fs::write(
        dist.0.join("split-manifest.json"),
        r#"{"/demo/sse": ["split_sse_page_1-0123456789abcdef.wasm"],
            "/har": ["split_har_page_2-fedcba9876543210.wasm"]}"#,
    )
    .unwrap();
    let router = dist.app();

    let (status, headers, body) = get(&router, "/demo/sse", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("<title>app</title>")
    );
    assert_eq!(
        headers[header::LINK],
        "</split_sse_page_1-0123456789abcdef.wasm>; rel=preload; as=fetch; crossorigin"
    );
    assert_eq!(
        get(&router, "/har", &[]).await.1[header::LINK],
        "</split_har_page_2-fedcba9876543210.wasm>; rel=preload; as=fetch; crossorigin"
    );
    // The index, a page the manifest does not name and a file get none.
    for path in ["/", "/demo/no-such-demo", "/app-0123abcd.js"] {
        let (status, headers, _) = get(&router, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!headers.contains_key(header::LINK), "{path}");
    }
}

#[tokio::test]
async fn a_manifest_that_does_not_read_costs_the_preloads_and_nothing_else() {
    let dist = Dist::new("bad-manifest");
    std::fs::write(dist.0.join("split-manifest.json"), "{not json").unwrap();
    let (status, headers, body) = get(&dist.app(), "/demo/sse", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key(header::LINK));
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("<title>app</title>")
    );
}

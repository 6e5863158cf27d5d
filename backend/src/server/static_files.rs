//! Serves the built frontend: compressed copies when the browser takes them, year-long caching
//! for content-hashed assets, revalidation for the page; unknown paths get `index.html` so deep
//! links survive a reload.
//!
//! - Compression: `make frontend` writes `X.br` and `X.gz` beside each asset
//!   (`scripts/compress-dist.sh`, brotli at its densest level, too slow to run per request);
//!   `ServeDir` sends the copy the request's `Accept-Encoding` prefers (brotli before gzip) with
//!   its `Content-Encoding`, and the file itself when there is no copy or no encoding accepted.
//!   Every answer says `Vary: Accept-Encoding` (`ServeDir` does not), so a shared cache keeps
//!   the encodings apart.
//! - Caching: a file whose name carries Trunk's content hash (`frontend-<hash>_bg.wasm`,
//!   `frontend-<hash>.js`, `style-<hash>.css`) never changes under that name: `public,
//!   max-age=31536000, immutable`. Anything else, the page first (`/`, `/index.html` and every
//!   deep link), is `no-cache`: kept, but revalidated on each use, so a new build is seen at
//!   once; `ServeDir` sends `Last-Modified` and answers `If-Modified-Since` with `304`. It sends
//!   no `ETag`, so `If-None-Match` gets the whole file.
//! - Preloading: the page is split into a main module and one WebAssembly chunk per demo
//!   (`scripts/split-wasm.sh`), which the page would fetch only once its main module runs. The
//!   page for `/demo/<slug>` or `/har` says `Link: </chunk>; rel=preload` for each file that
//!   page's chunk needs (`split-manifest.json`), so they download beside the main module.

use std::{collections::HashMap, path::Path, sync::Arc};

use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::Response,
};
use tower::Layer;
use tower_http::services::{ServeDir, ServeFile};

/// For a file that never changes under its name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For a file that may change under its name: use it only after asking the server.
const REVALIDATE: &str = "no-cache";

/// The files in `dist`, and `index.html` for any path that names none.
pub fn service(dist: &Path) -> Router {
    // The page for a deep link, marked before `cache_policy` sees it: `/frontend-<old hash>.js`,
    // gone after a rebuild, gets the page and must not be cached for a year under that name.
    let preloads = Arc::new(preloads(dist));
    let page = (
        middleware::from_fn(move |request: Request, next: Next| {
            let preload = preloads.get(request.uri().path()).cloned();
            async move {
                let mut response = next.run(request).await;
                if let Some(link) = preload
                    && response.status() == StatusCode::OK
                {
                    response.headers_mut().insert(header::LINK, link);
                }
                response
            }
        }),
        middleware::map_response(revalidate),
    )
        .layer(ServeFile::new(dist.join("index.html")));
    let files = ServeDir::new(dist)
        .precompressed_br()
        .precompressed_gzip()
        .fallback(page);
    Router::new()
        .fallback_service(files)
        .layer(middleware::from_fn(cache_policy))
}

async fn revalidate<B>(mut response: Response<B>) -> Response<B> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    response
}

/// Each page path's `Link` header: its chunk's files from `split-manifest.json` (path → file
/// names), as `rel=preload; as=fetch; crossorigin`, which is how the page's loader fetches them.
/// None without the manifest (a page built without splitting) or with one that does not read.
fn preloads(dist: &Path) -> HashMap<String, HeaderValue> {
    let Ok(text) = std::fs::read_to_string(dist.join("split-manifest.json")) else {
        return HashMap::new();
    };
    let Ok(pages) = serde_json::from_str::<HashMap<String, Vec<String>>>(&text) else {
        tracing::warn!("dist/split-manifest.json does not read; no preload links");
        return HashMap::new();
    };
    pages
        .into_iter()
        .filter_map(|(path, files)| {
            let links = files
                .iter()
                .map(|file| format!("</{file}>; rel=preload; as=fetch; crossorigin"))
                .collect::<Vec<_>>()
                .join(", ");
            Some((path, HeaderValue::from_str(&links).ok()?))
        })
        .collect()
}

/// Adds `Cache-Control` (unless the page fallback set it) and `Vary` to a static answer.
async fn cache_policy(request: Request, next: Next) -> Response {
    let hashed = request
        .uri()
        .path()
        .rsplit('/')
        .next()
        .is_some_and(has_content_hash);
    let mut response = next.run(request).await;
    let found = matches!(
        response.status(),
        StatusCode::OK | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED
    );
    let headers = response.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        let policy = if hashed && found {
            IMMUTABLE
        } else {
            REVALIDATE
        };
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// Whether a file name carries a content hash the way Trunk writes one: a `-`, at least eight
/// lowercase hex digits, then `.` or `_` (`frontend-3f0c…9a_bg.wasm`). Trunk writes sixteen
/// (a 64-bit hash, fewer when it starts with zeros); eight keep words out (`-facade.js`).
fn has_content_hash(name: &str) -> bool {
    name.match_indices('-').any(|(at, _)| {
        let rest = &name[at + 1..];
        let digits = rest
            .bytes()
            .take_while(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            .count();
        digits >= 8 && matches!(rest.as_bytes().get(digits), Some(b'.' | b'_'))
    })
}

#[cfg(test)]
mod tests {
    use super::has_content_hash;

    #[test]
    fn trunk_s_hashed_names_are_recognised_and_plain_names_are_not() {
        for hashed in [
            "frontend-bf6653d081201004_bg.wasm",
            "frontend-bf6653d081201004.js",
            "style-0123abcd.css",
            "app-0123abcd.js",
        ] {
            assert!(has_content_hash(hashed), "{hashed}");
        }
        for plain in [
            "index.html",
            "app.js",
            "favicon.svg",
            "sse",
            "app-0123abc.js",
            "app-0123ABCD.js",
            "app-0123abcdz.js",
            "app-0123abcd",
            "-facade.js",
        ] {
            assert!(!has_content_hash(plain), "{plain}");
        }
    }
}

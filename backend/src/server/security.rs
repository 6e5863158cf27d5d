//! Security headers on every response (pages, static files, API, errors): a
//! Content-Security-Policy that allows only what the page needs, `nosniff`, no referrer, no
//! framing.
//!
//! The policy, directive by directive:
//! - `default-src 'none'`: anything not listed below is refused.
//! - `script-src 'self' 'wasm-unsafe-eval' 'sha256-…'`: the app's own scripts; compiling its
//!   WebAssembly; and the one inline module script Trunk writes into `index.html` to start it,
//!   by hash, read from the `index.html` actually served (so it stays right when Trunk changes
//!   what it emits), and read again when that file changes under a running server (a
//!   `trunk build` beside `make run`: the new page's script has a new hash, and a stale policy
//!   would leave the page blank). No `'unsafe-inline'`: injected markup cannot run script.
//! - `style-src 'self'` (plus the hash of any inline `<style>` in `index.html`): the page's
//!   stylesheets. No `'unsafe-inline'` either: the page sets no `style` attribute (dynamic
//!   values go through the CSSOM, `style:prop=` in Leptos, which the policy does not govern).
//! - `connect-src 'self'`: fetch, `EventSource`, the `.wasm` download and WebSockets to the
//!   page's own origin (CSP level 3 matches `ws:`/`wss:` of the same host and port to `'self'`).
//! - `img-src 'self'`, `font-src 'self'`, `manifest-src 'self'`: the site's own files only.
//! - `base-uri 'none'`, `form-action 'self'`, `object-src 'none'`: no `<base>` hijack, no form
//!   posting elsewhere, no plugins.
//! - `frame-ancestors 'none'` (and `X-Frame-Options: DENY` for older browsers): no framing.
//!
//! With `--allow-origin` (the `trunk serve` loop) the page comes from Trunk, which proxies
//! `/api` here: the page's own policy is Trunk's, and these headers on API answers change
//! nothing for it.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::SystemTime,
};

use axum::{
    extract::State,
    http::{HeaderName, HeaderValue, header},
    response::Response,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};

type Headers = Arc<[(HeaderName, HeaderValue)]>;

/// The headers every response carries: made at start-up, and made again from the page's
/// `index.html` when an HTML answer finds that file changed.
#[derive(Clone)]
pub struct SecurityHeaders {
    current: Arc<RwLock<Headers>>,
    page: Option<Arc<Page>>,
}

/// The page's `index.html` and what it was (modified time, length) when last read.
struct Page {
    path: PathBuf,
    seen: RwLock<Option<(SystemTime, u64)>>,
}

/// When and how long `path` was last written, if it can be read.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl SecurityHeaders {
    /// Headers for a server whose page is `index_html` (`None`: API only, no inline code).
    pub fn new(index_html: Option<&str>) -> SecurityHeaders {
        SecurityHeaders {
            current: Arc::new(RwLock::new(headers_for(index_html.unwrap_or("")))),
            page: None,
        }
    }

    /// Headers for the page in `dist` (reads its `index.html`); API-only ones without.
    pub fn for_dist(dist: Option<&Path>) -> SecurityHeaders {
        let Some(dist) = dist else {
            return SecurityHeaders::new(None);
        };
        let path = dist.join("index.html");
        let seen = stamp(&path);
        let mut headers = SecurityHeaders::new(Some(&read_page(&path)));
        headers.page = Some(Arc::new(Page {
            path,
            seen: RwLock::new(seen),
        }));
        headers
    }

    /// The headers to send now; for an HTML answer (the page itself) first made again if
    /// `index.html` changed since it was last read (one `stat` per page load, none per API call).
    fn for_response(&self, html: bool) -> Headers {
        if html && let Some(page) = &self.page {
            let Page { path, seen } = &**page;
            let now = stamp(path);
            let changed = *seen
                .read()
                .expect("never poisoned: no code panics holding it")
                != now;
            if changed {
                *self.current.write().expect("never poisoned") = headers_for(&read_page(path));
                *seen.write().expect("never poisoned") = now;
                tracing::info!(path = %path.display(), "index.html changed: policy made again for its inline script");
            }
        }
        self.current.read().expect("never poisoned").clone()
    }

    /// The Content-Security-Policy sent (for the tests).
    #[cfg(test)]
    fn policy(&self) -> String {
        let headers = self.current.read().expect("never poisoned").clone();
        headers[0]
            .1
            .to_str()
            .expect("the policy is ASCII")
            .to_owned()
    }
}

/// The headers for a page whose HTML is `index_html` (empty: API only, no inline code).
fn headers_for(index_html: &str) -> Headers {
    let csp = content_security_policy(index_html);
    Arc::new([
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&csp).expect("the policy is ASCII"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ])
}

/// The page's HTML, or nothing (with a warning) when it cannot be read.
fn read_page(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| {
        tracing::warn!(path = %path.display(), cause = %err, "cannot read index.html: its inline script will be refused");
        String::new()
    })
}

/// Middleware: adds the headers to a response that does not set them itself.
pub async fn add(State(security): State<SecurityHeaders>, mut response: Response) -> Response {
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
    let fresh = security.for_response(html);
    let headers = response.headers_mut();
    for (name, value) in fresh.iter() {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    response
}

/// The policy for a page whose HTML is `index_html` (see the module documentation).
pub fn content_security_policy(index_html: &str) -> String {
    let hashes = |tag| {
        inline_hashes(index_html, tag)
            .into_iter()
            .map(|h| format!(" '{h}'"))
            .collect::<String>()
    };
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'{}; style-src 'self'{}; \
         connect-src 'self'; img-src 'self'; font-src 'self'; manifest-src 'self'; \
         base-uri 'none'; form-action 'self'; object-src 'none'; frame-ancestors 'none'",
        hashes("script"),
        hashes("style"),
    )
}

/// `sha256-…` source expressions for every inline `<tag>` element (one without `src`) in
/// `html`: base64 of the SHA-256 of its exact text, as browsers compute it.
pub fn inline_hashes(html: &str, tag: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let open = format!("<{tag}");
    let close = format!("</{tag}");
    let mut hashes = Vec::new();
    let mut at = 0;
    while let Some(start) = lower[at..].find(&open).map(|i| at + i) {
        let after_name = start + open.len();
        // `<scripts>` or `<style-x>` are other elements.
        if !lower[after_name..].starts_with(|c: char| c == '>' || c.is_ascii_whitespace()) {
            at = after_name;
            continue;
        }
        let Some(body_start) = lower[after_name..].find('>').map(|i| after_name + i + 1) else {
            break;
        };
        let Some(body_end) = lower[body_start..].find(&close).map(|i| body_start + i) else {
            break;
        };
        let attributes = &lower[after_name..body_start - 1];
        if !has_attribute(attributes, "src") {
            let digest = Sha256::digest(&html.as_bytes()[body_start..body_end]);
            hashes.push(format!("sha256-{}", STANDARD.encode(digest)));
        }
        at = body_end + close.len();
    }
    hashes
}

/// Whether an opening tag's attribute text names `name` (as a whole attribute name).
fn has_attribute(attributes: &str, name: &str) -> bool {
    attributes
        .split(|c: char| c.is_ascii_whitespace() || c == '/')
        .any(|a| a == name || a.starts_with(&format!("{name}=")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_rebuilt_under_a_running_server_gets_a_policy_for_its_new_script() {
        let dist = std::env::temp_dir().join(format!("patternscope-csp-{}", std::process::id()));
        std::fs::create_dir_all(&dist).unwrap();
        let index = dist.join("index.html");
        let page = |script: &str| {
            format!("<html><head><script type=module>{script}</script></head></html>")
        };
        let hash = |script: &str| format!("sha256-{}", STANDARD.encode(Sha256::digest(script)));
        std::fs::write(&index, page("start('a')")).unwrap();
        let headers = SecurityHeaders::for_dist(Some(&dist));
        assert!(headers.policy().contains(&hash("start('a')")));

        // Trunk writes a new page (another length, so the change shows whatever the clock's grain).
        std::fs::write(&index, page("start('b-longer')")).unwrap();
        // An API answer does not look at the page.
        let api = headers.for_response(false);
        assert!(api[0].1.to_str().unwrap().contains(&hash("start('a')")));
        // The page itself does, and from then on every answer carries the new policy.
        let html = headers.for_response(true);
        assert!(
            html[0]
                .1
                .to_str()
                .unwrap()
                .contains(&hash("start('b-longer')"))
        );
        assert!(!headers.policy().contains(&hash("start('a')")));
        std::fs::remove_dir_all(&dist).unwrap();
    }

    #[test]
    fn hashes_a_known_inline_script() {
        // `echo -n "alert('Hello, world.');" | openssl dgst -sha256 -binary | base64`; the same
        // example as MDN's CSP page.
        let html = "<html><head><script>alert('Hello, world.');</script></head></html>";
        assert_eq!(
            inline_hashes(html, "script"),
            ["sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng="]
        );
    }

    #[test]
    fn hashes_the_exact_text_of_a_trunk_module_script() {
        let body = "\nimport init, * as bindings from '/frontend-1.js';\nawait init();\n";
        let html = format!(
            "<head><link rel=\"stylesheet\" href=\"/s.css\"/>\n<script type=\"module\">{body}</script>\n\
             <script src=\"/other.js\"></script><SCRIPT defer src=/x.js></SCRIPT></head>"
        );
        let expected = format!(
            "sha256-{}",
            STANDARD.encode(Sha256::digest(body.as_bytes()))
        );
        assert_eq!(
            inline_hashes(&html, "script"),
            std::slice::from_ref(&expected)
        );
        let csp = content_security_policy(&html);
        assert!(
            csp.contains(&format!(
                "script-src 'self' 'wasm-unsafe-eval' '{expected}';"
            )),
            "{csp}"
        );
    }

    #[test]
    fn scripts_with_src_or_other_tags_are_not_hashed() {
        let html = "<scripts>x</scripts><script src='/a.js'></script><script data-src=1>y</script>";
        assert_eq!(
            inline_hashes(html, "script"),
            [format!("sha256-{}", STANDARD.encode(Sha256::digest(b"y")))]
        );
    }

    #[test]
    fn the_policy_allows_no_inline_code_and_no_framing() {
        let csp = content_security_policy("<html><style>p{}</style></html>");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(csp.contains("default-src 'none'"));
        assert!(csp.contains("connect-src 'self'"));
        let style = format!("sha256-{}", STANDARD.encode(Sha256::digest(b"p{}")));
        assert!(
            csp.contains(&format!("style-src 'self' '{style}'")),
            "{csp}"
        );
    }

    #[test]
    fn the_built_page_s_inline_script_is_allowed() {
        // The dist/index.html of this checkout, when it has been built.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/index.html");
        let Ok(html) = std::fs::read_to_string(path) else {
            return;
        };
        let headers = SecurityHeaders::new(Some(&html));
        let scripts = inline_hashes(&html, "script");
        assert_eq!(scripts.len(), 1, "Trunk emits one inline module script");
        assert!(headers.policy().contains(&scripts[0]));
    }
}

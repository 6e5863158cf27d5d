//! Network conditions per run: the `link` a run's requests name (`?link=3g`) is applied by the
//! server to every byte of the run in both directions. A request is held until its head would
//! have arrived before the handler sees it, and its body frame by frame; a response is held
//! before it is written, its body (events included) frame by frame; the WebSocket transport
//! holds each frame the same way ([`Shaper`] in the request's extensions). The run's requests
//! share one link, as on a real one: what one sends waits for what another is sending.
//!
//! Connection set-up (TCP, TLS) is not delayed: the run is not known until the request is read.
//!
//! ```text
//! browser ──head+body──▶ [up pipe: rate, ½ RTT, loss] ──▶ record ──▶ handler
//! browser ◀──head+body── [down pipe]                  ◀── record ◀──┘
//! ```

pub mod body;
pub mod pipe;

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::Body,
    extract::{OptionalFromRequestParts, Request},
    http::{HeaderMap, request::Parts},
    response::Response,
};
use protocol::{LINK_PARAM, RUN_PARAM, link::Link, trace::RunId};
use tokio::time::Instant;
use tower::Service;

use crate::{
    error::AppError,
    server::{
        around::{self, Wrap, Wrapped},
        client::ClientId,
        expiring::{CLASS_CLIENTS, Expiring, WhenFull},
    },
};
use body::ShapedBody;
use pipe::Pipe;
pub use pipe::Way;

/// Runs whose link one client may have shaped at once (its own oldest is forgotten past it).
pub const LINKS_PER_CLIENT: usize = 16;
/// How long a run's link is kept after its last request.
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);

/// One run's link: its preset and the two directions' queues, shared by every request and
/// socket of the run. Cheap to clone.
#[derive(Clone)]
pub struct Shaper {
    link: Link,
    pipes: Arc<Mutex<[Pipe; 2]>>,
}

impl Shaper {
    pub fn new(link: Link) -> Shaper {
        Shaper {
            link,
            pipes: Arc::default(),
        }
    }

    /// When `bytes` handed to the link now arrive at the other end.
    pub fn arrival(&self, way: Way, bytes: usize) -> Instant {
        self.arrival_of(way, Instant::now(), bytes)
    }

    /// When `bytes` handed to the link at `handed` arrive at the other end.
    pub fn arrival_of(&self, way: Way, handed: Instant, bytes: usize) -> Instant {
        let mut pipes = self.pipes.lock().expect("link lock poisoned");
        let pipe = &mut pipes[way as usize];
        pipe.arrival(&self.link.spec(), way, handed, bytes, &mut |per_mille| {
            rand::random_range(0..1000) < per_mille
        })
    }
}

/// Every run's link, bounded like every store: forgetting one only starts its queues afresh.
#[derive(Clone)]
pub struct Links(Expiring<RunId, Shaper>);

impl Default for Links {
    fn default() -> Self {
        Links(
            Expiring::new(LINK_TTL)
                .bounded(LINKS_PER_CLIENT * CLASS_CLIENTS, WhenFull::EvictLeastRecent)
                .shared(LINKS_PER_CLIENT, "shaped runs"),
        )
    }
}

impl Links {
    pub fn with_ttl(self, ttl: Duration) -> Self {
        Links(self.0.with_ttl(ttl))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn prune(&self) {
        self.0.prune();
    }

    /// The link of `run`, made (or remade, when the run names another preset) as `link`.
    fn of_run(&self, run: RunId, link: Link, owner: Option<ClientId>) -> Shaper {
        let mut runs = self.0.lock();
        match runs.get_or_insert_for(owner, &run, || Shaper::new(link)) {
            Ok(shaper) if shaper.link == link => shaper.clone(),
            Ok(shaper) => {
                *shaper = Shaper::new(link);
                shaper.clone()
            }
            // Every entry in use cannot happen (none is kept while in use); shaped alone then.
            Err(_) => Shaper::new(link),
        }
    }
}

/// The link `query` names: `Ok(None)` for none or `local`, a 400 for an unknown name.
pub fn requested(query: Option<&str>) -> Result<Option<Link>, AppError> {
    let Some(name) = query_value(query, LINK_PARAM) else {
        return Ok(None);
    };
    match Link::from_name(name) {
        Some(Link::Local) => Ok(None),
        Some(link) => Ok(Some(link)),
        None => Err(AppError::BadRequest(format!(
            "unknown link {name:?}: use one of {}",
            Link::ALL.map(Link::name).join(", ")
        ))),
    }
}

fn query_value<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find_map(|(k, v)| (k == key).then_some(v))
}

/// Bytes of a head on the wire, near enough: its first line and each header line.
fn head_bytes(first_line: usize, headers: &HeaderMap) -> usize {
    first_line
        + 2
        + headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum::<usize>()
        + 2
}

/// The middleware: carries a request naming a link over that link both ways (see the module);
/// `AroundLayer(links)`. Outside the recording middleware, so the trace sees the request when
/// the handler does and the response when the server hands it to the link. A request naming no
/// link goes straight to the inner service: the price every traced request pays is reading its
/// query once.
impl<S> Wrap<S> for Links
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    fn wrap(&self, request: Request, inner: &mut S) -> Wrapped<S::Future> {
        let link = match requested(request.uri().query()) {
            Ok(None) => return around::passed(request, inner),
            Ok(Some(link)) => link,
            Err(e) => return around::refused(e),
        };
        // The service that was made ready goes with the request; a clone stays for the next.
        let ready = inner.clone();
        let inner = std::mem::replace(inner, ready);
        around::wrapped(shaped(self.clone(), link, request, inner))
    }
}

/// `request` carried over `link` to `inner`, and its response back.
async fn shaped<S>(
    links: Links,
    link: Link,
    request: Request,
    mut inner: S,
) -> Result<Response, Infallible>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let run = query_value(request.uri().query(), RUN_PARAM).filter(|r| RunId::is_valid(r));
    let shaper = match run {
        Some(run) => links.of_run(
            RunId(run.to_owned()),
            link,
            request.extensions().get::<ClientId>().copied(),
        ),
        None => Shaper::new(link),
    };
    // The head and whatever body has come with it entered the link when they reached the
    // server: the body follows the head on the wire, it does not cross the link again after it.
    let arrived = Instant::now();
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    let method = request.method().as_str().len();
    let head = head_bytes(method + target + 10, request.headers());
    tokio::time::sleep_until(shaper.arrival_of(Way::Up, arrived, head)).await;
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(shaper.clone());
    let body = Body::new(ShapedBody::new(body, shaper.clone(), Way::Up, arrived));
    let response = inner.call(Request::from_parts(parts, body)).await?;
    // Likewise the response: its head and what of its body is ready leave together.
    let departed = Instant::now();
    let head = head_bytes(15, response.headers());
    tokio::time::sleep_until(shaper.arrival_of(Way::Down, departed, head)).await;
    Ok(response.map(|body| Body::new(ShapedBody::new(body, shaper, Way::Down, departed))))
}

/// A handler's link, for what it writes outside the response body (a WebSocket's frames):
/// `None` when the request named none.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Shaper {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Shaper>().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_is_read_from_the_query() {
        assert_eq!(requested(None).unwrap(), None);
        assert_eq!(requested(Some("run=a&rid=1")).unwrap(), None);
        assert_eq!(requested(Some("link=local")).unwrap(), None);
        assert_eq!(
            requested(Some("run=a&link=3g")).unwrap(),
            Some(Link::ThreeG)
        );
        let refused = requested(Some("link=5g")).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("local, 4g, 3g, satellite, lossy")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_runs_requests_share_its_link() {
        let links = Links::default();
        let run = RunId("r".into());
        let first = links.of_run(run.clone(), Link::ThreeG, None);
        let again = links.of_run(run.clone(), Link::ThreeG, None);
        // 200,000 bytes at 1.6 Mbit/s hold the link for 1 s; the next request's bytes wait.
        first.arrival(Way::Down, 200_000);
        let waited = again.arrival(Way::Down, 0) - Instant::now();
        assert_eq!(waited, Duration::from_millis(1_150));
        let other = links.of_run(RunId("other".into()), Link::ThreeG, None);
        assert_eq!(
            other.arrival(Way::Down, 0) - Instant::now(),
            Duration::from_millis(150)
        );
        let changed = links.of_run(run, Link::Satellite, None);
        assert_eq!(changed.link, Link::Satellite);
    }
}

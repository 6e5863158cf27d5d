//! Real HTTP listeners inside the backend process (127.0.0.1, a port the OS picks) for the
//! server-internal actors of the balancer and sidecar demos, and the bounded per-run registry
//! that owns them: each run gets its own actors, and they stop when the run ends, expires or
//! is evicted.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use crate::{
    actors::relay::{self, Relay},
    error::AppError,
    server::{
        client::ClientId,
        expiring::{CLASS_CLIENTS, Expiring, Refused, WhenFull},
    },
    trace::{Hop, TraceIds, Tracer},
    trace::{TraceHub, server_now_us},
};
use axum::{
    Json, Router,
    extract::{Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use protocol::{
    ApiError, pairing,
    trace::{Kind, RunId},
};
use tokio::{
    net::TcpListener,
    sync::{Semaphore, oneshot},
};

/// Requests one inner listener serves at once; beyond that it answers 503 at once.
pub const MAX_IN_FLIGHT: usize = 32;

/// One real listener with its own axum router. Dropping it stops it: open connections finish
/// their current request and close.
pub struct InnerListener {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl InnerListener {
    /// Binds 127.0.0.1 on a fresh port and serves `router` until dropped or until `stopped`
    /// (the whole server's shutdown) completes.
    pub async fn start(
        name: &'static str,
        router: Router,
        stopped: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<InnerListener> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, on_stop) = oneshot::channel::<()>();
        let limit = (name, Arc::new(Semaphore::new(MAX_IN_FLIGHT)));
        let router = router.layer(middleware::from_fn_with_state(limit, bounded));
        tokio::spawn(async move {
            let shutdown = async move {
                tokio::select! {
                    _ = on_stop => {}
                    _ = stopped => {}
                }
            };
            if let Err(err) = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(actor = name, cause = %err, "inner listener failed");
            }
            tracing::debug!(actor = name, %addr, "inner listener stopped");
        });
        tracing::debug!(actor = name, %addr, "inner listener started");
        Ok(InnerListener {
            addr,
            stop: Some(stop),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port{path_and_query}`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }
}

impl Drop for InnerListener {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Refuses a request with a JSON 503 when the listener already serves `MAX_IN_FLIGHT`; stamps
/// every answer with when its request arrived and when it was answered, for the relay's trace.
async fn bounded(
    State((name, limit)): State<(&'static str, Arc<Semaphore>)>,
    request: Request,
    next: Next,
) -> Response {
    let arrived = server_now_us();
    let mut response = match limit.try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(ApiError {
                error: format!("{name} is busy: {MAX_IN_FLIGHT} requests in flight already"),
            }),
        )
            .into_response(),
    };
    relay::stamp(&mut response, arrived);
    response
}

/// What a run owns in one demo (its listeners and their state), bounded and expiring. Removing
/// an entry drops it, which stops its listeners. Cheap to clone.
pub struct PerRun<T> {
    /// Each run's value, forgotten after `ttl` unused, never while a request uses it (holds a
    /// clone); counted against the share of the client that started it, whose own least
    /// recently used run goes when it starts one more.
    entries: Expiring<RunId, Arc<T>>,
}

impl<T> Clone for PerRun<T> {
    fn clone(&self) -> Self {
        PerRun {
            entries: self.entries.clone(),
        }
    }
}

impl<T> PerRun<T> {
    /// At most `per_client` runs (`what`, plural, in a refusal) of one client at once (a new
    /// one stops its least recently used idle one), `per_client` × [`CLASS_CLIENTS`] in all,
    /// each forgotten `ttl` after it was last used.
    pub fn new(per_client: usize, what: &'static str, ttl: Duration) -> PerRun<T> {
        PerRun {
            entries: Expiring::new(ttl)
                .bounded(per_client * CLASS_CLIENTS, WhenFull::EvictLeastRecent)
                .shared(per_client, what)
                .kept_while(|value| Arc::strong_count(value) > 1)
                .logging_evictions("run's actors"),
        }
    }

    /// Puts `value` in for `run`, started by `client`, returning what it replaces; refused
    /// (429) when every run the client or the store holds is in use by a request.
    pub fn insert(
        &self,
        client: Option<ClientId>,
        run: RunId,
        value: Arc<T>,
    ) -> Result<Option<Arc<T>>, Refused> {
        self.entries.insert_for(client, run, value)
    }

    /// The run's entry, if it has one that has not expired; marks it used.
    pub fn get(&self, run: &RunId) -> Option<Arc<T>> {
        self.entries.touch(run)
    }

    pub fn remove(&self, run: &RunId) -> Option<Arc<T>> {
        self.entries.remove(run)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The same runs, each forgotten `ttl` after it was last used.
    pub fn with_ttl(mut self, ttl: Duration) -> PerRun<T> {
        self.entries = self.entries.with_ttl(ttl);
        self
    }

    /// Drops the runs unused for longer than the TTL, which stops their listeners (the
    /// periodic sweep calls it).
    pub fn prune(&self) {
        self.entries.prune();
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Draws the server stopping each of a run's `actors`, and answers the stop request.
pub fn stopped(trace: &TraceHub, ids: TraceIds, actors: &[&str]) -> Json<protocol::Stopped> {
    let tracer = Tracer::new(trace, Some(ids));
    for actor in actors {
        tracer.record(|rid| {
            Hop::new(
                Kind::Close,
                "server",
                actor,
                pairing::hop(rid, &format!("stop-{actor}")),
            )
            .label(format!("stop {actor}"))
        });
    }
    Json(protocol::Stopped { stopped: true })
}

/// A browser request for `/{path}?{query}` passed on, unchanged and traced, to a run's first
/// actor (`entry`, drawn as `actor`): the balancer or the sidecar.
pub struct PassOn<'a> {
    pub trace: &'a TraceHub,
    pub relay: &'a Relay,
    pub ids: TraceIds,
    pub actor: &'static str,
    pub entry: &'a InnerListener,
}

impl PassOn<'_> {
    pub async fn send(
        self,
        path: &str,
        uri: &axum::http::Uri,
        method: axum::http::Method,
        headers: &axum::http::HeaderMap,
        body: axum::body::Body,
    ) -> Result<Response, AppError> {
        let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        let url = self.entry.url(&format!("/{path}{query}"));
        let tracer = Tracer::new(self.trace, Some(self.ids));
        self.relay
            .pass_on(&tracer, self.actor, url, method, headers, body)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    #[test]
    fn unused_runs_are_dropped_by_the_sweep() {
        let runs: PerRun<u32> = PerRun::new(8, "runs", Duration::from_secs(60)).with_ttl(SHORT);
        runs.insert(None, RunId("old".into()), Arc::new(1)).unwrap();
        past_the_ttl();
        runs.insert(None, RunId("new".into()), Arc::new(2)).unwrap();
        runs.prune();
        assert_eq!(runs.len(), 1);
        past_the_ttl();
        runs.prune();
        assert!(runs.is_empty());
    }

    /// Long enough that a loaded machine's preemption between an insert and the prune after it
    /// does not use it up (with 40 ms, the entry just inserted could expire before the prune).
    const SHORT: Duration = Duration::from_millis(300);

    fn past_the_ttl() {
        std::thread::sleep(SHORT + Duration::from_millis(100));
    }

    #[test]
    fn a_client_past_its_share_loses_its_own_least_recently_used_idle_run() {
        let runs: PerRun<u32> = PerRun::new(2, "clusters", Duration::from_secs(60));
        let id = |s: &str| RunId(s.into());
        let client = |n| Some(ClientId::of(std::net::IpAddr::from([10, 0, 0, n])));
        runs.insert(client(2), id("theirs"), Arc::new(0)).unwrap();
        runs.insert(client(1), id("a"), Arc::new(1)).unwrap();
        runs.insert(client(1), id("b"), Arc::new(2)).unwrap();
        assert!(runs.get(&id("a")).is_some(), "a is now the most recent");
        runs.insert(client(1), id("c"), Arc::new(3)).unwrap();
        assert_eq!(runs.len(), 3);
        assert!(runs.get(&id("b")).is_none(), "b was evicted");
        assert!(runs.get(&id("theirs")).is_some(), "another client's stayed");
        // Both of its runs in use by a request: refused, not evicted.
        let in_use = (runs.get(&id("a")).unwrap(), runs.get(&id("c")).unwrap());
        let refused = runs.insert(client(1), id("d"), Arc::new(4)).unwrap_err();
        assert!(
            AppError::from(refused)
                .to_string()
                .starts_with("one client may hold 2 clusters at once; you hold 2")
        );
        drop(in_use);
        assert_eq!(runs.remove(&id("c")).as_deref(), Some(&3));
        assert_eq!(runs.len(), 2);
    }

    #[tokio::test]
    async fn a_listener_serves_until_dropped() {
        let router = Router::new().route("/", get(|| async { "hi" }));
        let inner = InnerListener::start("test", router, std::future::pending())
            .await
            .unwrap();
        let url = inner.url("/");
        assert_eq!(
            reqwest::get(&url).await.unwrap().text().await.unwrap(),
            "hi"
        );
        drop(inner);
        let refused = tokio::time::timeout(Duration::from_secs(5), async {
            while reqwest::get(&url).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(refused.is_ok(), "the port is closed within 5 s of the drop");
    }
}

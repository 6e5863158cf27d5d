//! The load balancer: a reverse proxy on its own port that sends each request to one of two
//! instances, in turn (round robin, counted per run), or, when sticky, back to the instance
//! named in the client's `lb_sticky` cookie.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, Method, Uri, header},
    response::{IntoResponse, Response},
};

use super::instance::cookie;
use crate::{
    actors::relay::{Hop, Relay, forwardable},
    error::AppError,
    trace::{TraceHub, Tracer},
};

/// The lifelines of the two instances, in balancer order.
pub const INSTANCES: [&str; 2] = ["instance-a", "instance-b"];
/// The cookie a sticky balancer pins a client with.
pub const STICKY_COOKIE: &str = "lb_sticky";

/// What the balancer knows: where the instances listen now, and whose turn it is.
pub struct Balancer {
    pub hub: TraceHub,
    pub relay: Relay,
    pub sticky: bool,
    /// Updated when an instance restarts on a new port.
    pub targets: Arc<Mutex<[SocketAddr; 2]>>,
    /// Round-robin turn.
    pub next: AtomicUsize,
}

impl Balancer {
    /// The instance for this request and why.
    fn pick(&self, headers: &HeaderMap) -> (usize, &'static str, bool) {
        if self.sticky {
            let pinned = cookie(headers, STICKY_COOKIE)
                .and_then(|name| INSTANCES.iter().position(|i| *i == name));
            if let Some(i) = pinned {
                return (i, "sticky cookie", false);
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % INSTANCES.len();
        (i, "round robin", self.sticky)
    }
}

pub fn router(balancer: Arc<Balancer>) -> Router {
    Router::new().fallback(forward).with_state(balancer)
}

async fn forward(
    State(lb): State<Arc<Balancer>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let tracer = Tracer::from_uri(&lb.hub, &uri);
    let (i, why, pin) = lb.pick(&headers);
    let name = INSTANCES[i];
    let addr = lb.targets.lock().expect("targets lock poisoned")[i];
    let path = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    tracing::debug!(instance = name, why, path, "balancer routes");
    let answer = lb
        .relay
        .send(
            &tracer,
            Hop {
                from: "lb",
                to: name,
                suffix: "i",
                why: why.to_owned(),
                method,
                url: format!("http://{addr}{path}"),
                headers: forwardable(&headers),
                body,
            },
        )
        .await?;
    let mut response = answer.into_response();
    response
        .headers_mut()
        .insert("x-served-by", HeaderValue::from_static(name));
    if pin {
        let pin = format!("{STICKY_COOKIE}={name}; Path=/api/lb; HttpOnly; SameSite=Strict");
        if let Ok(value) = HeaderValue::from_str(&pin) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

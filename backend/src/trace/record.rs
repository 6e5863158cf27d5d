//! The recording middleware: a request that carries `run` and `rid` is logged when it arrives
//! (with the headers the server really received) and its response when it leaves (with the
//! handler's timing phases). One middleware serves every demo.

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use axum::{
    body::HttpBody,
    extract::{ConnectInfo, OriginalUri, Request},
    http::{HeaderMap, HeaderName, header},
    response::Response,
};
use protocol::{pairing, trace::RequestId};
use tower::Service;

use crate::server::{
    around::{self, Wrap, Wrapped},
    client::ClientId,
};

use super::{
    clock::server_now_us,
    http_half::{Exchange, HeaderBlock, HttpHalf},
    hub::TraceHub,
    ids::TraceIds,
    phases::Phases,
};

/// The middleware: records the arrival and the departure of each traced exchange; its state is
/// the trace hub, all it uses (`AroundLayer(trace_hub)`). A request that is not traced goes
/// straight to the inner service; a traced one pays one boxed future.
impl<S> Wrap<S> for TraceHub
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    fn wrap(&self, mut request: Request, inner: &mut S) -> Wrapped<S::Future> {
        let mut ids = match TraceIds::from_query(request.uri().query()) {
            Ok(Some(ids)) => ids,
            Ok(None) => return around::passed(request, inner),
            Err(e) => return around::refused(e),
        };
        if let Some(last) = last_event_id_text(request.headers()) {
            ids.connection = RequestId(pairing::reconnect(&ids.request.0, last));
        }
        let arrived = server_now_us();
        let exchange = Arc::new(Exchange {
            ids,
            method: request.method().clone(),
            target: target_of(&request),
            version: request.version(),
            connection: request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| u64::from(peer.port())),
        });
        let client = request.extensions().get::<ClientId>().copied();
        let trace = self.clone();
        trace.record_http(
            HttpHalf {
                exchange: Arc::clone(&exchange),
                at_us: arrived,
                status: None,
                headers: HeaderBlock::of(request.headers()),
                body_bytes: content_length(request.headers())
                    .or_else(|| request.body().size_hint().exact())
                    .unwrap_or(0),
                phases: Vec::new(),
            },
            client,
        );
        // The handler's `TraceIds` are read from it (see `ids.rs`).
        request.extensions_mut().insert(Arc::clone(&exchange));
        let answered = inner.call(request);
        around::wrapped(async move {
            let mut response = answered.await?;
            // Moved, not copied: nothing after this middleware reads them.
            let phases = response
                .extensions_mut()
                .remove::<Phases>()
                .map(|p| p.0)
                .unwrap_or_default();
            trace.record_http(
                HttpHalf {
                    exchange,
                    at_us: server_now_us(),
                    status: Some(response.status()),
                    headers: HeaderBlock::of(response.headers()),
                    body_bytes: response.body().size_hint().exact().unwrap_or(0),
                    phases,
                },
                client,
            );
            Ok(response)
        })
    }
}

/// The full path and query as the browser sent them (nesting strips the `/api` prefix from
/// `uri()`).
fn target_of(request: &Request) -> String {
    let uri = request
        .extensions()
        .get::<OriginalUri>()
        .map_or(request.uri(), |OriginalUri(uri)| uri);
    uri.path_and_query()
        .map_or_else(|| uri.path(), |pq| pq.as_str())
        .to_owned()
}

/// The `Last-Event-ID` a reconnecting EventSource sends, if it is a number.
pub fn last_event_id(headers: &HeaderMap) -> Option<u32> {
    last_event_id_text(headers)?.parse().ok()
}

/// The `Last-Event-ID` a reconnecting EventSource sends, as text: a number, or a pub/sub
/// stream's position in each of its topics (`news:3,sport:7`). `None` when absent, or longer
/// or stranger than any id this server sends.
pub fn last_event_id_text(headers: &HeaderMap) -> Option<&str> {
    const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
    /// Room for a cursor over every topic a room may have.
    const MAX_LEN: usize = 2_048;
    let id = headers.get(LAST_EVENT_ID)?.to_str().ok()?.trim();
    let plain = |b: u8| b.is_ascii_alphanumeric() || b" -_:,".contains(&b);
    (!id.is_empty() && id.len() <= MAX_LEN && id.bytes().all(plain)).then_some(id)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

//! One module per demo, each with its own `router()`; [`router`] mounts them all.
//!
//! May import every layer below: `crate::actors`, `crate::transport`, `crate::trace`,
//! `crate::server`, `crate::error`, `crate::AppState`. No pattern imports another, except the
//! waiting-for-results demos, which share [`jobs`].

pub(crate) mod jobs;
pub(crate) mod long_polling;
pub(crate) mod multiplexing;
pub mod protocols;
pub mod pubsub;
pub(crate) mod push;
pub mod queue;
pub(crate) mod request_response;
pub(crate) mod rest_graphql;
pub(crate) mod short_polling;
pub(crate) mod sidecar;
pub(crate) mod sse;
pub mod stateful_stateless;
pub(crate) mod sync_async;
pub(crate) mod upload;

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

/// Every demo's endpoints, each registered with its OpenAPI description.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(request_response::router())
        .merge(jobs::router())
        .merge(short_polling::router())
        .merge(long_polling::router())
        .merge(sse::router())
        .merge(push::router())
        .merge(pubsub::router())
        .merge(sync_async::router())
        .merge(upload::router())
        .merge(stateful_stateless::router())
        .merge(sidecar::router())
        .merge(multiplexing::router())
        .merge(rest_graphql::router())
        .merge(queue::router())
        .merge(protocols::router())
}

//! One WebAssembly chunk per demo (and one for the HAR page): each `#[lazy]` function below is a
//! split point, so a page downloads the shared shell plus the chunk of the demo it opens, and a
//! chunk only when its page is first opened.
//!
//! The split itself happens after `cargo build`, in `scripts/split-wasm.sh` (Trunk's post-build
//! hook, `wasm-split-cli` from the `wasm_split_cli_support` crate): it cuts each function's code,
//! and everything only it reaches, into its own file, and the page fetches that file the first
//! time the function is awaited.
#![allow(unsafe_code)] // the split points' generated loader statics and `extern "C"` imports

use leptos::prelude::*;

use super::{
    compare, long_polling, multiplexing, protocols, pubsub, push, queue, request_response,
    rest_graphql, short_polling, sidecar, sse, stateful_stateless, sync_async, upload,
};

/// The page of the demo called `slug`, its chunk fetched first; `None` for a slug that names no
/// built demo.
pub(crate) async fn demo_page(slug: &str) -> Option<AnyView> {
    Some(match slug {
        "request-response" => request_response_page().await,
        "short-polling" => short_polling_page().await,
        "long-polling" => long_polling_page().await,
        "sse" => sse_page().await,
        "push" => push_page().await,
        "pubsub" => pubsub_page().await,
        "queue" => queue_page().await,
        "sync-async" => sync_async_page().await,
        "upload" => upload_page().await,
        "stateful-stateless" => stateful_stateless_page().await,
        "sidecar" => sidecar_page().await,
        "compare" => compare_page().await,
        "multiplexing" => multiplexing_page().await,
        "rest-graphql" => rest_graphql_page().await,
        "protocols" => protocols_page().await,
        _ => return None,
    })
}

#[lazy]
fn request_response_page() -> AnyView {
    view! { <request_response::RequestResponse/> }.into_any()
}

#[lazy]
fn short_polling_page() -> AnyView {
    view! { <short_polling::ShortPolling/> }.into_any()
}

#[lazy]
fn long_polling_page() -> AnyView {
    view! { <long_polling::LongPolling/> }.into_any()
}

#[lazy]
fn sse_page() -> AnyView {
    view! { <sse::ServerSentEvents/> }.into_any()
}

#[lazy]
fn push_page() -> AnyView {
    view! { <push::Push/> }.into_any()
}

#[lazy]
fn pubsub_page() -> AnyView {
    view! { <pubsub::PubSub/> }.into_any()
}

#[lazy]
fn queue_page() -> AnyView {
    view! { <queue::Queue/> }.into_any()
}

#[lazy]
fn sync_async_page() -> AnyView {
    view! { <sync_async::SyncAsync/> }.into_any()
}

#[lazy]
fn upload_page() -> AnyView {
    view! { <upload::UploadDemo/> }.into_any()
}

#[lazy]
fn stateful_stateless_page() -> AnyView {
    view! { <stateful_stateless::StatefulStateless/> }.into_any()
}

#[lazy]
fn sidecar_page() -> AnyView {
    view! { <sidecar::Sidecar/> }.into_any()
}

#[lazy]
fn compare_page() -> AnyView {
    view! { <compare::Compare/> }.into_any()
}

#[lazy]
fn multiplexing_page() -> AnyView {
    view! { <multiplexing::Multiplexing/> }.into_any()
}

#[lazy]
fn rest_graphql_page() -> AnyView {
    view! { <rest_graphql::RestGraphql/> }.into_any()
}

#[lazy]
fn protocols_page() -> AnyView {
    view! { <protocols::Protocols/> }.into_any()
}

/// The HAR page, fetched when `/har` is first opened.
#[lazy]
pub(crate) fn har_page() -> AnyView {
    view! { <crate::views::har_page::HarPage/> }.into_any()
}

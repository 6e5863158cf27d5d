//! The bare axum baseline of `make bench` (issue 7): the smallest axum server a learner would
//! write for each pattern, served by `axum::serve` with its defaults, in its own process so its
//! memory per connection can be read. `GET /sse` holds an event stream (keep-alive comments
//! only), `GET /ws` a WebSocket with a 4 KiB read buffer that reads until closed, `GET /wait` a
//! long poll answered by `POST /release` (which says how many were waiting).
#![forbid(unsafe_code)]

use std::{convert::Infallible, net::SocketAddr};

use axum::{
    Json, Router,
    extract::{State, WebSocketUpgrade},
    response::{
        IntoResponse,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use bench::server::BARE_SERVING;
use clap::Parser;
use tokio::sync::watch;

/// A bare axum server: the baseline the backend is compared with.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (release, released) = watch::channel(0u64);
    let app = Router::new()
        .route("/sse", get(sse))
        .route("/ws", get(ws))
        .route("/wait", get(wait))
        .route(
            "/release",
            post(move || async move {
                release.send_modify(|n| *n += 1);
                Json(serde_json::json!({ "waiters": release.receiver_count() - 1 }))
            }),
        )
        .with_state(released);
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    println!("{BARE_SERVING}{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn sse() -> impl IntoResponse {
    Sse::new(futures_util::stream::pending::<Result<Event, Infallible>>())
        .keep_alive(KeepAlive::default())
}

async fn ws(upgrade: WebSocketUpgrade) -> impl IntoResponse {
    upgrade
        .read_buffer_size(4 * 1024)
        .on_upgrade(|mut socket| async move { while let Some(Ok(_)) = socket.recv().await {} })
}

async fn wait(State(mut released): State<watch::Receiver<u64>>) -> impl IntoResponse {
    // The router's receiver never reads: start from the value there is now.
    released.mark_unchanged();
    let changed = released.changed().await.is_ok();
    let version = *released.borrow();
    Json(serde_json::json!({ "changed": changed, "version": version }))
}

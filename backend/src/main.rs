//! Command line of the Patternscope server: flags, logging and signals; the rest is in lib.rs.
#![forbid(unsafe_code)]

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use backend::{
    AppState, Cidr, Config,
    limits::{self, Limits},
    rate_limit::Rate,
    serve, tls,
};
use clap::Parser;

/// jemalloc rather than the system allocator: glibc's keeps the high-water mark of a burst of
/// connections resident long after they closed (the soak test saw a server at rest hold 65 %
/// more than before the same load), jemalloc gives freed pages back within seconds. (mimalloc
/// did too, but cost 34 KiB per idle SSE stream where jemalloc costs 26 and glibc 23.) With its
/// background threads (the `background_threads` feature): without them jemalloc purges only
/// while the arena that freed the pages allocates again, so a server gone quiet kept them
/// (`trace-bytes`: 95.6 MiB resident after every run had expired, 34.0 MiB with them; it
/// started at 12.5).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Patternscope: backend communication patterns, live in the browser.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Folder holding the built frontend (trunk's output).
    #[arg(long, default_value = "dist")]
    dist: PathBuf,
    /// Another origin allowed to open WebSockets, e.g. http://127.0.0.1:8081 for `trunk serve`.
    #[arg(long = "allow-origin")]
    allow_origins: Vec<String>,
    /// A reverse proxy (address or CIDR, e.g. 127.0.0.1 or 10.0.0.0/8; repeatable) whose
    /// X-Forwarded-For names the client and whose X-Forwarded-Host names the host pages
    /// come from. Its connections are not capped per client; its clients' requests are.
    #[arg(long = "trusted-proxy")]
    trusted_proxies: Vec<Cidr>,
    /// Run the pub/sub broker on Redis (e.g. redis://127.0.0.1:6379), so several instances
    /// share topics. Without it, the broker is embedded and serves this process only.
    #[arg(long = "redis-url")]
    redis_url: Option<String>,
    /// Offer a real RabbitMQ (e.g. amqp://guest:guest@127.0.0.1:5672/%2f) to the queue demo,
    /// beside its embedded queue; each run picks one.
    #[arg(long = "amqp-url")]
    amqp_url: Option<String>,
    /// The PostgreSQL the protocols demo's SQL lane asks (e.g.
    /// postgres://postgres@127.0.0.1:5432/postgres); it creates a small table there. Without
    /// it, that lane says how to enable it.
    #[arg(long = "postgres-url")]
    postgres_url: Option<String>,
    /// This instance's name on the diagram and in every response's X-Instance header
    /// (default: `instance-<port>`): 1 to 64 of A-Z a-z 0-9 - _ .
    #[arg(long, value_parser = instance_name)]
    instance: Option<String>,
    /// Also serve over TLS here (HTTP/2 and HTTP/1.1), with a certificate generated at start-up.
    #[arg(long)]
    tls: Option<SocketAddr>,
    /// Subscribers one pub/sub topic may have (default 64). Raise it for load tests only:
    /// the fan-out benchmark holds 10,000 on one topic.
    #[arg(long = "max-subscribers-per-topic")]
    max_subscribers_per_topic: Option<usize>,
    /// Connections (HTTP, SSE, WebSocket) one client may hold at once; more get a 429.
    /// A --trusted-proxy is not capped (its clients' requests are rate limited one by one).
    /// 0: no limit (benchmarks holding 10,000 sockets from one address).
    #[arg(long, default_value_t = limits::MAX_CONNECTIONS_PER_CLIENT)]
    max_connections_per_client: usize,
    /// Connections open at once, all clients together; more get a 429. 0: no limit.
    #[arg(long, default_value_t = limits::MAX_CONNECTIONS)]
    max_connections: usize,
    /// Jobs one client may create per second (jobs, the sync/async demo's work); 0: no limit.
    #[arg(long, default_value_t = limits::JOB_RATE.per_second)]
    job_rate: u32,
    /// Jobs one client may create in a burst.
    #[arg(long, default_value_t = limits::JOB_RATE.burst)]
    job_burst: u32,
    /// Messages one client may publish per second (a ticker started counts as one); 0: no limit.
    #[arg(long, default_value_t = limits::PUBLISH_RATE.per_second)]
    publish_rate: u32,
    /// Messages one client may publish in a burst.
    #[arg(long, default_value_t = limits::PUBLISH_RATE.burst)]
    publish_burst: u32,
    /// Chat lines one push socket may say per second (burst 20); 0: no limit.
    #[arg(long, default_value_t = limits::CHAT_RATE)]
    chat_rate: u32,
    /// The largest WebSocket message and frame a client may send, in bytes (more: close 1009).
    #[arg(long, default_value_t = limits::WS_MAX_MESSAGE)]
    ws_max_message: usize,
    /// Replaces every store's own expiry (trace runs 15 min; jobs, sessions, uploads, topics
    /// 10 min; per-run actors 5 min) with this many seconds.
    #[arg(long = "store-ttl")]
    store_ttl_secs: Option<u64>,
    /// Serve GET /api/debug/stats and POST /api/bench/bare, for tests and benchmarks only.
    #[arg(long)]
    debug_routes: bool,
}

/// `--instance`: a name that fits a header and a diagram label.
fn instance_name(s: &str) -> Result<String, String> {
    let fits = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if fits {
        Ok(s.to_owned())
    } else {
        Err("use 1 to 64 characters of A-Z a-z 0-9 - _ .".into())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .init();
    let args = Args::parse();
    let dist = if args.dist.join("index.html").is_file() {
        Some(args.dist.clone())
    } else {
        tracing::warn!(dist = %args.dist.display(), "no index.html there: serving the API only");
        None
    };
    let listener = listen(args.addr).with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    let state = AppState::new(Config {
        dist,
        allowed_origins: args.allow_origins,
        trusted_proxies: args.trusted_proxies,
        instance: args
            .instance
            .unwrap_or_else(|| format!("instance-{}", addr.port())),
        max_subscribers_per_topic: args.max_subscribers_per_topic,
        limits: Limits {
            max_connections_per_client: args.max_connections_per_client,
            max_connections: args.max_connections,
            job_rate: Rate {
                per_second: args.job_rate,
                burst: args.job_burst,
            },
            publish_rate: Rate {
                per_second: args.publish_rate,
                burst: args.publish_burst,
            },
            chat_rate: args.chat_rate,
            ws_max_message: args.ws_max_message,
            store_ttl: args.store_ttl_secs.map(Duration::from_secs),
            ..Limits::default()
        },
        debug_routes: args.debug_routes,
    });
    // Fail fast and plainly on an engine the command line names: no backtrace for a
    // configuration problem.
    let state = match &args.redis_url {
        Some(url) => {
            engine(
                "--redis-url (pub/sub broker and session store)",
                state.with_redis(url),
            )
            .await
        }
        None => state,
    };
    let state = match &args.amqp_url {
        Some(url) => engine("--amqp-url (queue demo)", state.with_rabbitmq(url)).await,
        None => state,
    };
    let state = match &args.postgres_url {
        Some(url) => {
            engine(
                "--postgres-url (the protocols demo's SQL lane)",
                state.with_postgres(url),
            )
            .await
        }
        None => state,
    };
    println!("Patternscope is serving on http://{addr}");
    let tls = match args.tls {
        Some(tls_addr) => Some(start_tls(tls_addr, &state).await?),
        None => None,
    };
    serve(listener, state, shutdown_signal()).await?;
    if let Some(tls) = tls {
        tls.await??;
    }
    Ok(())
}

/// The state once the engine `flag` names has started, or the process ends with its reason
/// (exit code 2).
async fn engine(flag: &str, started: impl Future<Output = Result<AppState, String>>) -> AppState {
    match started.await {
        Ok(state) => {
            tracing::info!("{flag}: connected");
            state
        }
        Err(e) => {
            eprintln!("error: {flag}: {e}");
            std::process::exit(2);
        }
    }
}

/// Connections the kernel completes and queues for us before we accept them. The usual 128
/// overflows when clients open connections faster than the server accepts them for a moment
/// (10,000 long polls parked at 64 at a time did, here): an overflowing queue drops the
/// client's handshake, and the client waits a whole second (then three) before trying again.
const LISTEN_BACKLOG: u32 = 4096;

/// A listening socket on `addr` with a backlog of [`LISTEN_BACKLOG`] (the kernel caps it at
/// `net.core.somaxconn`).
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Starts the TLS listener (it stops when the plain one begins shutting down).
async fn start_tls(
    addr: SocketAddr,
    state: &AppState,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = listen(addr).with_context(|| format!("cannot listen on {addr} for TLS"))?;
    let addr = listener.local_addr()?;
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    if !names.contains(&addr.ip().to_string()) {
        names.push(addr.ip().to_string());
    }
    let identity = tls::self_signed(names).context("cannot generate a TLS certificate")?;
    println!(
        "Patternscope is also serving on https://{addr} (HTTP/2 and HTTP/1.1; self-signed \
         certificate, SHA-256 fingerprint {})",
        identity.fingerprint
    );
    let state = state.clone();
    Ok(tokio::spawn(async move {
        let stopped = state.stopped();
        tls::serve_tls(listener, identity.config, state, stopped).await
    }))
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

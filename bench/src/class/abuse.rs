//! The clients a class must survive: abusers that hammer the most expensive endpoints as fast
//! as the server answers (never waiting out a `Retry-After`), and a slowloris that holds idle,
//! half-sent requests open on the proxy, trickling a header line now and then.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use protocol::{
    job::{JobSpec, MAX_PAYLOAD_BYTES, MAX_STEP_MS, MAX_STEPS},
    pubsub::{MAX_MESSAGE_BYTES, MAX_TICKER_RATE, MAX_TICKER_SECONDS, TickerSpec},
    upload::{MAX_FILE_BYTES, NewUpload},
};
use serde_json::json;
use tokio::{io::AsyncWriteExt, task::JoinSet};

use super::tls::Proxy;

/// What an abuser asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attack {
    /// The longest, largest job there is.
    Job,
    /// An upload announcing the largest file, never sent.
    BigUpload,
    /// A two-instance cluster for a fresh run.
    Cluster,
    /// The fastest, largest, longest ticker in a fresh room.
    Ticker,
    /// A traced echo of 64 KiB in a fresh run: one more trace to keep.
    TraceRun,
    /// A traced request with about 21 KiB of headers (within nginx's default buffers).
    BigHeaders,
}

impl Attack {
    pub const ALL: [Attack; 6] = [
        Attack::Job,
        Attack::BigUpload,
        Attack::Cluster,
        Attack::Ticker,
        Attack::TraceRun,
        Attack::BigHeaders,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attack::Job => "job (50 × 5 s, 16 KiB)",
            Attack::BigUpload => "upload announcing 16 MiB",
            Attack::Cluster => "cluster",
            Attack::Ticker => "ticker (20/s, 8 KiB, 60 s)",
            Attack::TraceRun => "trace run (64 KiB echo)",
            Attack::BigHeaders => "21 KiB of headers",
        }
    }
}

/// How the server answered an attack: counts by status (0 = no answer).
pub type Tally = BTreeMap<Attack, BTreeMap<u16, u64>>;

fn fresh_run() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// One abuser: `workers` loops from `local`, each cycling through every attack, until aborted.
pub fn spawn_abuser(
    tasks: &mut JoinSet<()>,
    proxy: &Proxy,
    local: IpAddr,
    workers: usize,
    tally: Arc<Mutex<Tally>>,
) -> anyhow::Result<()> {
    let http = proxy.http_client(local)?;
    for worker in 0..workers {
        let (http, tally, origin) = (http.clone(), Arc::clone(&tally), proxy.origin.clone());
        tasks.spawn(async move {
            let mut n = worker;
            loop {
                let attack = Attack::ALL[n % Attack::ALL.len()];
                n += 1;
                let status = attack_once(&http, &origin, attack).await;
                *tally
                    .lock()
                    .expect("tally lock")
                    .entry(attack)
                    .or_default()
                    .entry(status)
                    .or_default() += 1;
                if status == 0 {
                    // The proxy refused the connection: do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
    }
    Ok(())
}

async fn attack_once(http: &reqwest::Client, origin: &str, attack: Attack) -> u16 {
    let run = fresh_run();
    let ids = format!("run={run}&rid=1");
    let request = match attack {
        Attack::Job => http
            .post(format!("{origin}/api/jobs?{ids}"))
            .json(&JobSpec {
                steps: MAX_STEPS,
                step_ms: MAX_STEP_MS,
                payload_bytes: MAX_PAYLOAD_BYTES,
            }),
        Attack::BigUpload => http
            .post(format!("{origin}/api/uploads?{ids}"))
            .json(&NewUpload {
                name: "big.bin".into(),
                size: MAX_FILE_BYTES,
                sha256: "0".repeat(64),
            }),
        Attack::Cluster => http
            .post(format!("{origin}/api/lb/cluster?{ids}"))
            .json(&json!({ "mode": "store", "sticky": true })),
        Attack::Ticker => {
            http.post(format!("{origin}/api/pubsub/ticker?{ids}"))
                .json(&TickerSpec {
                    room: Some(format!("r{}", &run[..12])),
                    topic: "news".into(),
                    per_second: MAX_TICKER_RATE,
                    bytes: MAX_MESSAGE_BYTES as u32,
                    seconds: MAX_TICKER_SECONDS,
                })
        }
        Attack::TraceRun => http
            .post(format!("{origin}/api/echo?{ids}"))
            .header("content-type", "application/json")
            .body(
                serde_json::to_vec(&json!({ "customer": "x".repeat(64 * 1024), "items": [] }))
                    .unwrap_or_default(),
            ),
        Attack::BigHeaders => {
            let mut request = http.get(format!("{origin}/api/work/async?ms=1&{ids}"));
            for h in 0..3 {
                request = request.header(format!("x-filler-{h}"), "y".repeat(7 * 1024));
            }
            request
        }
    };
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let _ = response.bytes().await;
            status
        }
        Err(_) => 0,
    }
}

/// Counters of the slowloris.
#[derive(Debug, Default)]
pub struct SlowlorisCounts {
    /// Half-sent requests open now.
    pub held: AtomicU64,
    /// Connections opened (a closed one is opened again).
    pub opened: AtomicU64,
    /// Connections the proxy closed on it.
    pub closed_by_proxy: AtomicU64,
    /// Connections or handshakes that failed.
    pub refused: AtomicU64,
}

/// Holds `count` half-sent requests open from `local`, each sending its first line and a
/// header, then one header line every 10 s; a closed one is opened again. Opens at most 200
/// per second.
pub fn spawn_slowloris(
    tasks: &mut JoinSet<()>,
    proxy: &Proxy,
    local: IpAddr,
    count: usize,
    counts: Arc<SlowlorisCounts>,
) {
    for n in 0..count {
        let (proxy, counts) = (proxy.clone(), Arc::clone(&counts));
        tasks.spawn(async move {
            tokio::time::sleep(Duration::from_millis(5 * n as u64)).await;
            loop {
                let Ok(mut stream) = proxy.tls(local).await else {
                    counts.refused.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                };
                counts.opened.fetch_add(1, Ordering::Relaxed);
                counts.held.fetch_add(1, Ordering::Relaxed);
                let mut sent = stream
                    .write_all(b"GET /api/echo?process_ms=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    .await;
                let mut line = 0u64;
                while sent.is_ok() {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    line += 1;
                    sent = async {
                        stream
                            .write_all(format!("X-Slow-{line}: {line}\r\n").as_bytes())
                            .await?;
                        stream.flush().await
                    }
                    .await;
                }
                counts.held.fetch_sub(1, Ordering::Relaxed);
                counts.closed_by_proxy.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

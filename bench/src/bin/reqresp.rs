//! The request/response benchmark (issue 7): the echo endpoint with tracing on (every request
//! inside a run, so the trace hub records both its halves) against the bare axum route
//! `/api/bench/bare` of the same server, under the same wrk load, alternated round by round.
//! Reports requests per second and latency of both, the ratio, and checks the floor (≥ 95 %, issue 19)
//! and that the run's trace really holds the echo exchanges.
#![forbid(unsafe_code)]

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail, ensure};
use bench::{
    raise_open_file_limit,
    results::{self, Machine},
    server::ServerUnderTest,
    wrk::{self, Figures, Load},
};
use clap::Parser;
use protocol::{
    echo::Order,
    trace::{Kind, Message},
};

/// The floor: echo with tracing reaches this share of the bare route's requests per second.
const FLOOR_RATIO: f64 = 0.95;

/// Echo with tracing vs a bare axum route on the same server, under wrk.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// The backend binary to start (a release build).
    #[arg(long, default_value = "target/release/backend")]
    server_bin: PathBuf,
    /// wrk threads (the server's runtime has one worker per core; both share the two cores).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// wrk connections, kept alive.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of each wrk run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Rounds, each one run of the bare route then one of the echo; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Items in the JSON order posted to both.
    #[arg(long, default_value_t = 3)]
    items: u32,
    #[command(flatten)]
    output: results::Output,
}

/// One route's runs.
struct Route {
    name: &'static str,
    url: String,
    script: PathBuf,
    runs: Vec<Figures>,
    /// Server CPU time per request over its runs.
    cpu_per_request: Option<Duration>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    raise_open_file_limit()?;
    let machine = Machine::here();
    let load_before = results::load_average();
    eprintln!("reqresp: {}; load {load_before}", machine.describe());
    let server =
        ServerUnderTest::start(&args.server_bin, &["--instance".into(), "bench".into()]).await?;
    let run_id = format!("bench-echo-{}", std::process::id());
    let body = serde_json::to_string(&Order::sample(args.items))?;
    let dir = std::env::temp_dir().join(format!("patternscope-reqresp-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("post.lua");
    std::fs::write(&script, wrk::post_script(&body, "application/json"))?;
    let mut routes = [
        Route {
            name: "bare axum route (`POST /api/bench/bare`, no tracing)",
            url: format!("{}/api/bench/bare", server.base),
            script: script.clone(),
            runs: Vec::new(),
            cpu_per_request: None,
        },
        Route {
            name: "echo with tracing (`POST /api/echo?run=…&rid=…`)",
            url: format!("{}/api/echo?run={run_id}&rid=load", server.base),
            script,
            runs: Vec::new(),
            cpu_per_request: None,
        },
    ];
    check_answers(&routes, &body).await?;

    let load = Load {
        threads: args.threads,
        connections: args.connections,
        duration: Duration::from_secs(args.seconds),
    };
    let warm_up = Load {
        duration: Duration::from_secs(2),
        ..load.clone()
    };
    for route in &routes {
        wrk::run(&route.url, &route.script, &warm_up)?;
    }
    let mut cpu = [Duration::ZERO; 2];
    for round in 1..=args.rounds {
        // Every other round the echo goes first, so that a drift in the machine's other load
        // does not favour one route.
        let order: [usize; 2] = if round % 2 == 1 { [0, 1] } else { [1, 0] };
        for k in order {
            let route = &mut routes[k];
            let before = server.cpu_time();
            let figures = wrk::run(&route.url, &route.script, &load)?;
            if let (Some(b), Some(a)) = (before, server.cpu_time()) {
                cpu[k] += a - b;
            }
            eprintln!(
                "reqresp: round {round}: {}: {:.0} req/s, p50 {}, p99 {}",
                route.name,
                figures.requests_per_second,
                us(figures.p50),
                us(figures.p99)
            );
            ensure!(
                figures.bad_responses == 0 && figures.socket_errors == 0,
                "{}: {} non-2xx responses, {} socket errors",
                route.name,
                figures.bad_responses,
                figures.socket_errors
            );
            route.runs.push(figures);
        }
    }
    for (k, route) in routes.iter_mut().enumerate() {
        let requests: u64 = route.runs.iter().map(|f| f.requests).sum();
        route.cpu_per_request = (requests > 0).then(|| cpu[k] / requests as u32);
    }
    let traced = traced_echoes(&server, &run_id).await?;
    let _ = std::fs::remove_dir_all(&dir);

    let load_after = results::load_average();
    let report = report(
        &args,
        &machine,
        &routes,
        traced,
        (&load_before, &load_after),
    );
    println!("{report}");
    args.output.write("reqresp", &report)?;
    Ok(())
}

/// One request to each route before the load: both answer 200, the bare one with the JSON it
/// was sent, the echo with its reply and `Server-Timing`.
async fn check_answers(routes: &[Route], body: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    for route in routes {
        let response = http
            .post(&route.url)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await?;
        let status = response.status();
        let timing = response.headers().contains_key("server-timing");
        let text = response.text().await?;
        ensure!(status.is_success(), "{}: {status} {text}", route.name);
        if route.url.contains("/api/echo") {
            ensure!(timing, "the echo answered without Server-Timing");
            ensure!(text.contains("\"total_cents\""), "the echo answered {text}");
        } else {
            let (sent, back): (serde_json::Value, serde_json::Value) =
                (serde_json::from_str(body)?, serde_json::from_str(&text)?);
            ensure!(sent == back, "the bare route answered {text}");
        }
    }
    Ok(())
}

/// The echo responses the run's trace holds (the hub keeps the newest messages of a run): the
/// load must have been traced, not skipped.
async fn traced_echoes(server: &ServerUnderTest, run: &str) -> anyhow::Result<usize> {
    let messages: Vec<Message> = reqwest::get(format!("{}/api/trace/{run}", server.base))
        .await?
        .error_for_status()
        .context("the echo run has no trace")?
        .json()
        .await?;
    let echoes = messages
        .iter()
        .filter(|m| m.kind == Kind::Response && m.status == Some(200))
        .filter(|m| m.label.contains("/api/echo"))
        .count();
    if echoes == 0 {
        bail!("the run's trace holds no echo response");
    }
    Ok(echoes)
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// The median run of a route, by requests per second.
fn median(runs: &[Figures]) -> Option<&Figures> {
    let mut sorted: Vec<&Figures> = runs.iter().collect();
    sorted.sort_by(|a, b| a.requests_per_second.total_cmp(&b.requests_per_second));
    sorted.get(sorted.len() / 2).copied()
}

fn report(
    args: &Args,
    machine: &Machine,
    routes: &[Route],
    traced: usize,
    (load_before, load_after): (&str, &str),
) -> String {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut out = format!(
        "## Request/response: echo with tracing vs a bare axum route, same server\n\n\
         Command: `{command}`\n\n\
         - Date: {date}; machine: {machine}\n\
         - Load average (1/5/15 min): {load_before} before, {load_after} after\n\
         - Load: `wrk -t{t} -c{c} -d{s}s --latency`, keep-alive, loopback, on the same 2 cores \
           as the server (release backend, one process for every run); {rounds} rounds, each the \
           bare route then the echo (the echo first in even rounds), after a 2 s warm-up of \
           each; the median round by \
           requests per second is shown, and every round's figure\n\
         - Both get the same request: `POST` with a {n}-item JSON order ({bytes} bytes). The \
           echo parses it, times its phases and answers a JSON reply with `Server-Timing`; the \
           trace middleware records both halves of every exchange in run `{run}` (after the \
           load its trace held {traced} echo responses, the newest kept). The bare route is a \
           plain axum `Json` handler merged outside the trace middleware: it parses the \
           JSON and answers it back (backend/src/server/baseline.rs)\n\
         - Server CPU: user + system time of the server process over all rounds of the route, \
           divided by the requests\n\n",
        date = machine.date,
        machine = machine.describe(),
        t = args.threads,
        c = args.connections,
        s = args.seconds,
        rounds = args.rounds,
        n = args.items,
        bytes = serde_json::to_string(&Order::sample(args.items)).map_or(0, |b| b.len()),
        run = routes[1]
            .url
            .split("run=")
            .nth(1)
            .and_then(|r| r.split('&').next())
            .unwrap_or(""),
    );
    let rows: Vec<Vec<String>> = routes
        .iter()
        .filter_map(|r| {
            let m = median(&r.runs)?;
            let all: Vec<String> = r
                .runs
                .iter()
                .map(|f| format!("{:.0}", f.requests_per_second))
                .collect();
            Some(vec![
                r.name.to_owned(),
                format!("{:.0}", m.requests_per_second),
                us(m.p50),
                us(m.p99),
                all.join(", "),
                r.cpu_per_request
                    .map_or("n/a".into(), |c| format!("{:.1} µs", c.as_secs_f64() * 1e6)),
            ])
        })
        .collect();
    out += &results::table(
        &[
            "route",
            "requests/s (median)",
            "p50",
            "p99",
            "requests/s, each round",
            "server CPU / request",
        ],
        &rows,
    );
    if let (Some(bare), Some(echo)) = (median(&routes[0].runs), median(&routes[1].runs)) {
        let ratio = echo.requests_per_second / bare.requests_per_second;
        let verdict = if ratio >= FLOOR_RATIO {
            "holds"
        } else {
            "**does not hold**"
        };
        out += &format!(
            "\nRatio, same run: echo with tracing / bare axum route = **{:.1} %** \
             (floor ≥ {:.0} %: {verdict}).\n",
            ratio * 100.0,
            FLOOR_RATIO * 100.0
        );
        // Each round's pair ran back to back: their ratio is less swayed by the machine's
        // other load than the medians' (which may come from different rounds).
        let mut each: Vec<f64> = routes[0]
            .runs
            .iter()
            .zip(&routes[1].runs)
            .map(|(bare, echo)| echo.requests_per_second / bare.requests_per_second)
            .collect();
        let listed: Vec<String> = each.iter().map(|r| format!("{:.1} %", r * 100.0)).collect();
        each.sort_by(f64::total_cmp);
        out += &format!(
            "Round by round: {}; their median {:.1} %.\n",
            listed.join(", "),
            each[each.len() / 2] * 100.0
        );
    }
    out
}

//! Request/response beyond HTTP with a real client: the DNS lane against the process's own DNS
//! server (its datagrams, ids and the retry after a dropped query), and the SQL lane against a
//! real PostgreSQL, its wire messages as the relay saw them and as the trace records them.
//!
//! The PostgreSQL tests need `PATTERNSCOPE_TEST_POSTGRES` (a postgres:// URL; `make test`
//! starts a private PostgreSQL with `scripts/with-postgres.sh` and sets it). Without it they say
//! so loudly and pass without running.

mod common;

use backend::{AppState, Config};
use protocol::{
    ApiError,
    protocols::{Direction, LookupReport},
    trace::{Kind, Message, RunId, Transport},
};
use reqwest::{Client, StatusCode};

const POSTGRES_ENV: &str = "PATTERNSCOPE_TEST_POSTGRES";

fn postgres_url() -> Option<String> {
    common::engine_url(POSTGRES_ENV, "PostgreSQL")
}

async fn lookup(base: &str, query: &str) -> reqwest::Response {
    Client::new()
        .get(format!("{base}/api/protocols/lookup?{query}"))
        .send()
        .await
        .unwrap()
}

async fn report(base: &str, query: &str) -> LookupReport {
    let response = lookup(base, query).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn server_hops(state: &AppState, run: &str, transport: Transport) -> Vec<Message> {
    state
        .trace
        .snapshot(&RunId(run.into()))
        .unwrap()
        .into_iter()
        .filter(|m| m.transport == transport)
        .collect()
}

#[tokio::test]
async fn dns_answers_over_udp_and_the_sql_lane_says_how_to_enable_it() {
    let server = common::TestServer::start().await;
    let base = server.url("");
    let r = report(&base, "name=api&type=A&run=dns&rid=1").await;
    assert_eq!(r.dns.name, "api.patternscope.test.");
    assert_eq!(r.dns.answers, ["192.0.2.11"]);
    assert_eq!(r.dns.outcome, "NOERROR");
    let d = &r.dns.datagrams;
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(
        (d[0].direction, d[1].direction),
        (Direction::Request, Direction::Response)
    );
    assert_eq!(d[0].id, d[1].id);
    assert!(!r.sql.enabled);
    assert!(r.sql.messages.is_empty(), "nothing sent without PostgreSQL");
    assert!(r.sql.error.unwrap().contains("--postgres-url"));

    let hops = server_hops(&server.state, "dns", Transport::Udp);
    let drawn: Vec<(Kind, &str, u64)> = hops
        .iter()
        .map(|m| (m.kind, m.from.0.as_str(), m.bytes.unwrap()))
        .collect();
    assert_eq!(
        drawn,
        [
            (Kind::Request, "server", d[0].bytes),
            (Kind::Response, "dns", d[1].bytes)
        ]
    );
    assert_eq!(
        hops[0].request_id, hops[1].request_id,
        "query and answer pair"
    );
    assert!(hops[0].label.contains(&format!("#{:04x}", d[0].id)));

    let txt = report(&base, "name=db&type=TXT").await;
    assert_eq!(txt.dns.answers.len(), 1);
    assert!(txt.dns.answers[0].contains("PostgreSQL: orders and accounts"));
    let v6 = report(&base, "name=www&type=AAAA").await;
    assert_eq!(v6.dns.answers, ["2001:db8::10"]);
    let missing = report(&base, "name=nowhere&type=A").await;
    assert_eq!(missing.dns.outcome, "NXDOMAIN");
    assert!(missing.dns.answers.is_empty());
}

#[tokio::test]
async fn a_dropped_query_is_retried_after_the_resolvers_timeout() {
    let server = common::TestServer::start().await;
    let started = std::time::Instant::now();
    let r = report(
        &server.url(""),
        "name=queue&type=A&drop_first=true&run=drop&rid=1",
    )
    .await;
    assert!(
        started.elapsed().as_millis() >= 400,
        "waited for the timeout"
    );
    assert_eq!(r.dns.answers, ["192.0.2.13"]);
    let d = &r.dns.datagrams;
    assert_eq!(d.len(), 3, "{d:?}");
    assert!(d[0].dropped && d[0].direction == Direction::Request);
    assert!(!d[1].dropped && d[1].direction == Direction::Request);
    assert_eq!(d[1].id, d[2].id, "the answer is to the retry");
    let hops = server_hops(&server.state, "drop", Transport::Udp);
    let kinds: Vec<Kind> = hops.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, [Kind::Note, Kind::Request, Kind::Response]);
    assert!(hops[0].label.contains("lost"), "{}", hops[0].label);
    let gap = hops[1].sent_us.unwrap() - hops[0].sent_us.unwrap();
    assert!(gap >= 350_000, "the retry came after the timeout: {gap} µs");
}

#[tokio::test]
async fn bad_parameters_get_a_422_naming_them_and_lookups_are_rate_limited() {
    let server = common::TestServer::start().await;
    let base = server.url("");
    for (query, names) in [
        ("type=A", "name"),
        ("name=a.b&type=A", "DNS label"),
        ("name=api&type=MX", "type"),
        ("name=api&type=A&drop_first=maybe", "drop_first"),
    ] {
        let response = lookup(&base, query).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
        let error: ApiError = response.json().await.unwrap();
        assert!(error.error.contains(names), "{query}: {}", error.error);
    }
    let mut refused = None;
    for n in 1..=20 {
        let response = lookup(&base, "name=api&type=A").await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            refused = Some(n);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let n = refused.expect("the lookup rate refuses a fast client");
    assert!(
        (10..=13).contains(&n),
        "a burst of 10 passes: refused at {n}"
    );
    let stats: serde_json::Value = Client::new()
        .get(server.url("/api/debug/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["stores"]["protocol_lookups"], 0, "every slot freed");
    assert_eq!(stats["stores"]["lookup_rate_clients"], 1);
}

/// The message names both ways of one lookup, as PostgreSQL's extended query protocol has them.
const QUERY_MESSAGES: [&str; 15] = [
    "Parse",
    "Describe",
    "Sync",
    "ParseComplete",
    "ParameterDescription",
    "RowDescription",
    "ReadyForQuery",
    "Bind",
    "Execute",
    "Sync",
    "BindComplete",
    "DataRow",
    "CommandComplete",
    "ReadyForQuery",
    "Terminate",
];

#[tokio::test]
async fn the_sql_lane_asks_postgres_and_every_wire_message_is_drawn() {
    let Some(url) = postgres_url() else { return };
    let state = AppState::new(Config {
        debug_routes: true,
        ..Config::default()
    })
    .with_postgres(&url)
    .await
    .unwrap();
    let server = common::TestServer::with_state(state).await;
    let base = server.url("");
    let r = report(&base, "name=db&type=A&run=sql&rid=1").await;
    assert!(r.sql.enabled);
    assert_eq!(r.sql.error, None);
    assert_eq!(r.sql.rows.len(), 1);
    let row = &r.sql.rows[0];
    assert_eq!((row.name.as_str(), row.port), ("db", 5432));
    assert_eq!(r.dns.answers, ["192.0.2.12"], "both lanes answered");

    let names: Vec<&str> = r.sql.messages.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names[..2],
        ["StartupMessage", "AuthenticationOk"],
        "{names:?}"
    );
    let query_starts = names.iter().position(|n| *n == "Parse").unwrap();
    let setup = &names[2..query_starts];
    assert!(setup.contains(&"ParameterStatus") && setup.contains(&"BackendKeyData"));
    assert_eq!(setup.last(), Some(&"ReadyForQuery"));
    assert_eq!(names[query_starts..], QUERY_MESSAGES, "{names:?}");
    assert!(r.sql.messages[query_starts..].iter().all(|m| m.count == 1));
    // PostgreSQL reports its settings at start-up, a dozen or more ParameterStatus messages,
    // drawn as one arrow per read that brought them.
    let statuses: u32 = r
        .sql
        .messages
        .iter()
        .filter(|m| m.name == "ParameterStatus")
        .map(|m| m.count)
        .sum();
    assert!(statuses >= 10, "{statuses} ParameterStatus");
    for m in &r.sql.messages {
        let request = matches!(
            m.name.as_str(),
            "StartupMessage" | "Parse" | "Describe" | "Sync" | "Bind" | "Execute" | "Terminate"
        );
        assert_eq!(m.direction == Direction::Request, request, "{}", m.name);
    }

    // The trace has each of them, in order, with its size, between server and postgres.
    let hops = server_hops(&server.state, "sql", Transport::Tcp);
    assert_eq!(hops.len(), r.sql.messages.len());
    for (hop, m) in hops.iter().zip(&r.sql.messages) {
        assert!(
            hop.label.starts_with(&m.name),
            "{} vs {}",
            hop.label,
            m.name
        );
        assert_eq!(hop.bytes, Some(m.bytes));
        let (from, to) = match m.direction {
            Direction::Request => ("server", "postgres"),
            Direction::Response => ("postgres", "server"),
        };
        assert_eq!((hop.from.0.as_str(), hop.to.0.as_str()), (from, to));
        let kind = match (m.direction, m.name.as_str()) {
            (Direction::Request, "Terminate") => Kind::Close,
            (Direction::Request, _) => Kind::Request,
            (Direction::Response, _) => Kind::Response,
        };
        assert_eq!(hop.kind, kind, "{}", m.name);
    }
    // Each answer that completes a request carries its id (the server's bar spans the two).
    let id_of = |name: &str| {
        hops.iter()
            .find(|h| h.label.split(' ').next() == Some(name))
            .and_then(|h| h.request_id.clone())
            .unwrap()
    };
    for (request, answer) in [
        ("Parse", "ParseComplete"),
        ("Describe", "RowDescription"),
        ("Bind", "BindComplete"),
        ("Execute", "CommandComplete"),
    ] {
        assert_eq!(id_of(request), id_of(answer), "{answer} answers {request}");
    }
    assert_ne!(
        id_of("DataRow"),
        id_of("Execute"),
        "a row is part of the work"
    );
    let parse = hops.iter().find(|h| h.label.starts_with("Parse")).unwrap();
    assert!(parse.label.contains("WHERE name = $1"));
    let bind = hops.iter().find(|h| h.label.starts_with("Bind")).unwrap();
    assert!(bind.label.contains("$1=\"db\""), "{}", bind.label);
    let row = hops
        .iter()
        .find(|h| h.label.starts_with("DataRow"))
        .unwrap();
    assert!(
        row.label.contains("\"db\"") && row.label.contains("= 5432"),
        "{}",
        row.label
    );

    // A name with no row: a real, empty answer.
    let none = report(&base, "name=nowhere&type=A").await;
    assert!(none.sql.rows.is_empty() && none.sql.error.is_none());
    assert!(!none.sql.messages.iter().any(|m| m.name == "DataRow"));
    assert!(
        none.sql
            .messages
            .iter()
            .any(|m| m.name == "CommandComplete")
    );
}

#[tokio::test]
async fn an_unreachable_postgres_fails_at_start_with_a_reason() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let error = AppState::new(Config::default())
        .with_postgres(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
        .await
        .err()
        .expect("nothing listens there");
    assert!(error.contains("cannot connect"), "{error}");
    let bad = AppState::new(Config::default())
        .with_postgres("mysql://nope")
        .await
        .err()
        .unwrap();
    assert!(bad.contains("PostgreSQL URL"), "{bad}");
}

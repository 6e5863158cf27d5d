//! What a run cost, measured from its trace: requests, bytes each way, latency, connections.

use std::collections::{BTreeSet, HashMap};

use protocol::trace::{Actor, Kind, Transport};

use super::{
    format::{human_bytes, human_us},
    merge::Drawn,
    phases::HANDED_TO_PAGE,
};

/// One measured figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Stable machine name (`data-name`).
    pub name: &'static str,
    pub label: &'static str,
    /// The raw number (`data-value`).
    pub value: f64,
    /// How a person reads it.
    pub shown: String,
}

impl Metric {
    /// A plain count.
    pub fn count(name: &'static str, label: &'static str, n: usize) -> Metric {
        Metric {
            name,
            label,
            value: n as f64,
            shown: n.to_string(),
        }
    }
}

/// A demo's own figures, measured from the merged trace.
pub type TraceMetrics = fn(&[Drawn]) -> Vec<Metric>;

/// The median of `values` (which it sorts), or `None` if empty.
fn median(values: &mut [i64]) -> Option<i64> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

/// Whether `actor` is a client of the server: the page itself, or a simulated `client-N`.
pub fn is_client(actor: &Actor) -> bool {
    actor.0 == "browser" || actor.0.starts_with("client-")
}

/// The figures every demo shares: requests, bytes each way, latency, connections, errors.
pub fn http_metrics(trace: &[Drawn]) -> Vec<Metric> {
    let requests: Vec<&Drawn> = trace
        .iter()
        .filter(|d| d.kind == Kind::Request && is_client(&d.from))
        .collect();
    let responses: HashMap<_, &Drawn> = trace
        .iter()
        .filter(|d| d.kind == Kind::Response && is_client(&d.to) && d.recv_us.is_some())
        .filter_map(|d| Some((d.request_id.clone()?, d)))
        .collect();
    // Up: every request and every frame a client sent.
    let up: u64 = trace
        .iter()
        .filter(|d| is_client(&d.from) && matches!(d.kind, Kind::Request | Kind::Push))
        .filter_map(|d| d.bytes)
        .sum();
    // Down: every answer and every pushed event or frame that reached a client.
    let down: u64 = trace
        .iter()
        .filter(|d| is_client(&d.to) && d.recv_us.is_some())
        .filter(|d| matches!(d.kind, Kind::Response | Kind::Event | Kind::Push))
        .filter_map(|d| d.bytes)
        .sum();
    let mut latencies: Vec<i64> = requests
        .iter()
        .filter_map(|req| Some(responses.get(req.request_id.as_ref()?)?.recv_us? - req.sent_us))
        .collect();
    let mut server_times: Vec<i64> = requests
        .iter()
        .filter_map(|req| Some(responses.get(req.request_id.as_ref()?)?.sent_us - req.recv_us?))
        .collect();
    let connections: BTreeSet<u64> = requests.iter().filter_map(|d| d.connection).collect();
    let errors = responses
        .values()
        .filter(|d| d.status.is_some_and(|s| s >= 400))
        .count();
    let latency = median(&mut latencies);
    let server = median(&mut server_times);
    vec![
        Metric {
            name: "requests",
            label: "requests",
            value: requests.len() as f64,
            shown: requests.len().to_string(),
        },
        Metric {
            name: "bytes-up",
            label: "bytes up",
            value: up as f64,
            shown: human_bytes(up),
        },
        Metric {
            name: "bytes-down",
            label: "bytes down",
            value: down as f64,
            shown: human_bytes(down),
        },
        Metric {
            name: "latency-p50",
            label: "latency (median)",
            value: latency.unwrap_or(0) as f64 / 1000.0,
            shown: latency.map(human_us).unwrap_or_else(|| "–".into()),
        },
        Metric {
            name: "server-time-p50",
            label: "server time (median)",
            value: server.unwrap_or(0) as f64 / 1000.0,
            shown: server.map(human_us).unwrap_or_else(|| "–".into()),
        },
        Metric {
            name: "connections",
            label: "connections used",
            value: connections.len() as f64,
            shown: connections.len().to_string(),
        },
        Metric {
            name: "errors",
            label: "error responses",
            value: errors as f64,
            shown: errors.to_string(),
        },
    ]
}

/// For the polling demos: how many polls were made and how many brought nothing new (the same
/// version as the previous answer, or a long poll that timed out unchanged).
pub fn poll_metrics(trace: &[Drawn]) -> Vec<Metric> {
    let mut polls = 0u32;
    let mut empty = 0u32;
    let mut last_version = 0u64;
    for d in trace
        .iter()
        .filter(|d| d.kind == Kind::Response && is_client(&d.to))
    {
        let Ok(body) = serde_json::from_str::<serde_json::Value>(&d.detail.body) else {
            continue;
        };
        let (changed, update) = match body.get("changed") {
            Some(changed) => (changed.as_bool(), body.get("update")),
            None => (None, Some(&body)),
        };
        let Some(version) = update
            .and_then(|u| u.get("version"))
            .and_then(|v| v.as_u64())
        else {
            continue;
        };
        polls += 1;
        let nothing_new = changed.map(|c| !c).unwrap_or(version == last_version);
        if nothing_new {
            empty += 1;
        }
        last_version = version;
    }
    vec![
        Metric {
            name: "polls",
            label: "polls",
            value: polls.into(),
            shown: polls.to_string(),
        },
        Metric {
            name: "empty-polls",
            label: "polls with nothing new",
            value: empty.into(),
            shown: empty.to_string(),
        },
    ]
}

/// The `p`-th percentile (0–100) of `values` (which it sorts), nearest rank.
pub fn percentile(values: &mut [i64], p: f64) -> Option<i64> {
    values.sort_unstable();
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values
        .get(rank.saturating_sub(1).min(values.len().saturating_sub(1)))
        .copied()
}

/// How promptly job updates reached the page, and what the page held open to get them.
/// `offset` is server clock minus browser clock, so an update's `emitted_us` maps to
/// `emitted_us - offset` on the page's clock.
pub fn notification_metrics(trace: &[Drawn], offset: i64) -> Vec<Metric> {
    // Notification latency: each job version, from the worker's emit to the first message that
    // brought it to the page (a poll answer, an event, a frame).
    let mut first_seen: HashMap<u64, i64> = HashMap::new();
    for d in trace
        .iter()
        .filter(|d| is_client(&d.to) && d.transport != Transport::Internal)
    {
        // When the page's code had it: a fetch's answer is handed over after its network end.
        let handed = d
            .detail
            .phases
            .iter()
            .find(|p| p.name == HANDED_TO_PAGE)
            .map(|p| p.start_us);
        let Some(recv) = handed.or(d.recv_us) else {
            continue;
        };
        let Ok(body) = serde_json::from_str::<serde_json::Value>(&d.detail.body) else {
            continue;
        };
        let update = body.get("update").unwrap_or(&body);
        let (Some(version), Some(emitted)) = (
            update.get("version").and_then(|v| v.as_u64()),
            update.get("emitted_us").and_then(|v| v.as_i64()),
        ) else {
            continue;
        };
        if version == 0 {
            continue; // the state at submission, not a notification
        }
        let latency = (recv - (emitted - offset)).max(0);
        first_seen
            .entry(version)
            .and_modify(|l| *l = (*l).min(latency))
            .or_insert(latency);
    }
    let mut latencies: Vec<i64> = first_seen.into_values().collect();
    let p50 = percentile(&mut latencies, 50.0);
    let p95 = percentile(&mut latencies, 95.0);

    // Held: each exchange from its request to the last thing that travelled under its id
    // (the response, or the last event or frame of a stream or socket).
    let mut held_us = 0i64;
    for req in trace
        .iter()
        .filter(|d| d.kind == Kind::Request && is_client(&d.from))
    {
        let Some(rid) = req.request_id.as_ref().map(|r| r.0.as_str()) else {
            continue;
        };
        let family = |id: &str| {
            id == rid
                || id
                    .strip_prefix(rid)
                    .is_some_and(|rest| rest.starts_with('-'))
        };
        let end = trace
            .iter()
            .filter(|d| d.transport != Transport::Internal)
            .filter(|d| d.request_id.as_ref().is_some_and(|r| family(&r.0)))
            .filter_map(|d| d.recv_us.or(Some(d.sent_us)))
            .max()
            .unwrap_or(req.sent_us);
        held_us += (end - req.sent_us).max(0);
    }
    let ms = |v: Option<i64>| v.map(|us| us as f64 / 1000.0).unwrap_or(0.0);
    let shown = |v: Option<i64>| v.map(human_us).unwrap_or_else(|| "–".into());
    vec![
        Metric {
            name: "latency-notify-p50",
            label: "update → page p50",
            value: ms(p50),
            shown: shown(p50),
        },
        Metric {
            name: "latency-notify-p95",
            label: "update → page p95",
            value: ms(p95),
            shown: shown(p95),
        },
        Metric {
            name: "held-ms",
            label: "connection time held",
            value: held_us as f64 / 1000.0,
            shown: human_us(held_us),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::merge::{merge, tests::exchange};

    #[test]
    fn counts_requests_bytes_and_latency() {
        let (mut b1, s1) = exchange("1", 0, 10_000, 0);
        let (mut b2, s2) = exchange("2", 100_000, 30_000, 0);
        b1[0].bytes = Some(300);
        b1[1].bytes = Some(500);
        b2[0].bytes = Some(100);
        b2[1].bytes = Some(50);
        let browser: Vec<_> = b1.into_iter().chain(b2).collect();
        let server: Vec<_> = s1.into_iter().chain(s2).collect();
        let m = http_metrics(&merge(&browser, &server, None));
        let get = |n: &str| m.iter().find(|x| x.name == n).unwrap().value;
        assert_eq!(get("requests"), 2.0);
        assert_eq!(get("bytes-up"), 400.0);
        assert_eq!(get("bytes-down"), 550.0);
        assert_eq!(
            get("latency-p50"),
            32.0,
            "sorted [12 ms, 32 ms], upper median"
        );
        assert_eq!(get("server-time-p50"), 30.0);
    }

    #[test]
    fn notification_latency_runs_from_emit_to_first_arrival() {
        let (b, s) = exchange("1", 0, 1_000, 0);
        let mut trace = merge(&b, &s, None);
        let response = trace.iter().position(|d| d.kind == Kind::Response).unwrap();
        let mut later = trace[response].clone();
        // Version 1 emitted at server 10 ms (clock 5 ms ahead), first seen at 12 ms, seen again at 30 ms.
        trace[response].detail.body = r#"{"version":1,"emitted_us":15000}"#.into();
        trace[response].recv_us = Some(12_000);
        later.key = "again".into();
        later.detail.body = r#"{"changed":true,"update":{"version":1,"emitted_us":15000}}"#.into();
        later.recv_us = Some(30_000);
        trace.push(later);
        let m = notification_metrics(&trace, 5_000);
        assert_eq!(m[0].value, 2.0, "p50 is the first arrival: 12 ms - 10 ms");
        assert!(m[2].value > 0.0, "the exchange held its connection");
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut v = vec![5, 1, 4, 2, 3];
        assert_eq!(percentile(&mut v, 50.0), Some(3));
        assert_eq!(percentile(&mut v, 95.0), Some(5));
        assert_eq!(percentile(&mut [], 50.0), None);
    }

    #[test]
    fn empty_polls_are_those_that_brought_nothing_new() {
        let (b, s) = exchange("1", 0, 1_000, 0);
        let mut trace = merge(&b, &s, None);
        let response = trace.iter().position(|d| d.kind == Kind::Response).unwrap();
        let answers = [
            r#"{"job":"j","version":0,"steps":3,"done":false,"emitted_us":1}"#,
            r#"{"job":"j","version":0,"steps":3,"done":false,"emitted_us":1}"#,
            r#"{"job":"j","version":2,"steps":3,"done":false,"emitted_us":1}"#,
            r#"{"changed":false,"update":{"job":"j","version":2,"steps":3,"done":false,"emitted_us":1}}"#,
            r#"{"changed":true,"update":{"job":"j","version":3,"steps":3,"done":true,"emitted_us":1}}"#,
        ];
        let template = trace[response].clone();
        trace.retain(|d| d.kind != Kind::Response);
        for body in answers {
            let mut d = template.clone();
            d.detail.body = body.into();
            trace.push(d);
        }
        let m = poll_metrics(&trace);
        assert_eq!((m[0].value, m[1].value), (5.0, 3.0));
    }
}

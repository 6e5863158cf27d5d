//! The browser side: `GET /api/mux/slow?ms=T` holds each request T ms and counts how many of
//! the same run's requests the server is holding at once. Fired N at a time from a page over
//! HTTP/1.1, the count stops at the browser's per-origin connection limit (six in Chromium);
//! over HTTP/2 all N arrive together.

use protocol::ApiError;
use std::time::Duration;

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, Version},
    response::{IntoResponse, Response},
};
use protocol::{
    multiplexing::{MAX_SLOW_MS, SlowAnswer},
    trace::RunId,
};
use serde::Deserialize;

use super::in_range;
use crate::{
    AppState,
    error::AppError,
    extract::AppQuery,
    server::{
        client::ClientId,
        expiring::{CLASS_CLIENTS, Expiring, WhenFull},
        rate_limit::Client,
    },
    trace::{Phases, TraceIds},
};

/// Runs one client may have counted at once (a run per press of Run); past it, the client's
/// own least recently touched idle run is forgotten, a busy one never is.
pub const RUNS_PER_CLIENT: usize = 8;
/// Runs counted at once: every client's share for [`CLASS_CLIENTS`] clients (384); when full,
/// an idle run of the client holding the most is forgotten to make room, a busy one never is.
pub const MAX_RUNS: usize = RUNS_PER_CLIENT * CLASS_CLIENTS;
/// An idle run's count is forgotten after this long.
pub const RUN_TTL: Duration = Duration::from_secs(10 * 60);

/// Per-run counts of held requests. Cheap to clone.
#[derive(Clone)]
pub struct InFlight {
    /// Each run's count, touched as requests arrive and leave: kept while it holds any, then
    /// forgotten after [`RUN_TTL`] (unless `--store-ttl` says otherwise); beyond [`MAX_RUNS`], the
    /// least recently touched idle run makes room, and with none idle the request is refused.
    runs: Expiring<RunId, Count>,
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight {
            runs: Expiring::new(RUN_TTL)
                .bounded(MAX_RUNS, WhenFull::EvictLeastRecent)
                .shared(RUNS_PER_CLIENT, "runs holding requests")
                .kept_while(|count| count.now > 0),
        }
    }
}

#[derive(Default)]
struct Count {
    now: u32,
    max: u32,
}

/// One held request; leaving (however the handler ends) counts it out.
pub struct Held {
    runs: Expiring<RunId, Count>,
    run: RunId,
    /// The run's requests held when this one arrived, itself included.
    pub at_arrival: u32,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(count) = self.runs.lock().touch(&self.run) {
            count.now = count.now.saturating_sub(1);
        }
    }
}

impl InFlight {
    /// The same counts, forgetting idle runs after `ttl`.
    pub fn with_ttl(mut self, ttl: Duration) -> InFlight {
        self.runs = self.runs.with_ttl(ttl);
        self
    }

    /// Forgets the counts of runs idle for longer than the TTL (the periodic sweep calls it).
    pub fn prune(&self) {
        self.runs.prune();
    }

    /// Counts a request of `run` (made by `client` if new) in; a 429 when every run of the
    /// client's share (or every slot) is busy.
    pub fn enter(&self, client: Option<ClientId>, run: &RunId) -> Result<Held, AppError> {
        let mut runs = self.runs.lock();
        let count = runs.get_or_insert_for(client, run, Count::default)?;
        count.now += 1;
        count.max = count.max.max(count.now);
        Ok(Held {
            runs: self.runs.clone(),
            run: run.clone(),
            at_arrival: count.now,
        })
    }

    /// The most of `run`'s requests held at once so far.
    pub fn max(&self, run: &RunId) -> u32 {
        self.runs.lock().get(run).map_or(0, |c| c.max)
    }

    /// Runs counted now.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlowQuery {
    ms: u32,
}

/// `GET /api/mux/slow?ms=T&run=…&rid=…`.
#[utoipa::path(get, path = "/mux/slow", tag = "multiplexing",
    params(SlowQuery),
    responses((status = 200, description = "Answered after ms", body = SlowAnswer),
        (status = 400, description = "No run/rid", body = ApiError), (status = 422, description = "ms missing, not a number or out of range", body = ApiError),
        (status = 429, description = "Every run of this client's share (or of the server) is holding requests (Retry-After)", body = ApiError)))]
pub async fn slow(
    State(state): State<AppState>,
    Client(client): Client,
    trace: Option<TraceIds>,
    version: Version,
    query: Result<AppQuery<SlowQuery>, AppError>,
) -> Result<Response, AppError> {
    let AppQuery(q) = query?;
    let ms = in_range("ms", q.ms, 0, MAX_SLOW_MS)?;
    let Some(ids) = trace else {
        return Err(AppError::BadRequest(
            "the slow endpoint counts requests per run: add run=…&rid=… to the query".into(),
        ));
    };
    let held = state.mux.in_flight.enter(client, &ids.run)?;
    let mut phases = Phases::default();
    let stopped = state.stopped();
    phases
        .time_async("held", async {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(ms.into())) => {}
                _ = stopped => {}
            }
        })
        .await;
    let answer = SlowAnswer {
        in_flight_at_arrival: held.at_arrival,
        max_in_flight: state.mux.in_flight.max(&ids.run),
        version: format!("{version:?}"),
        held_ms: ms,
    };
    drop(held);
    let mut response = Json(answer.clone()).into_response();
    response.headers_mut().insert(
        "x-in-flight",
        HeaderValue::from(answer.in_flight_at_arrival),
    );
    Ok(phases.attach(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_in_and_out_and_keeps_the_most() {
        let counts = InFlight::default();
        let run = RunId("r".into());
        let a = counts.enter(None, &run).unwrap();
        let b = counts.enter(None, &run).unwrap();
        assert_eq!((a.at_arrival, b.at_arrival), (1, 2));
        drop(a);
        let c = counts.enter(None, &run).unwrap();
        assert_eq!(c.at_arrival, 2);
        assert_eq!(counts.max(&run), 2);
        drop((b, c));
        assert_eq!(counts.enter(None, &run).unwrap().at_arrival, 1);
    }

    #[test]
    fn idle_counts_expire_on_the_sweep_and_busy_ones_stay() {
        let counts = InFlight::default().with_ttl(Duration::from_millis(40));
        let busy = counts.enter(None, &RunId("busy".into())).unwrap();
        drop(counts.enter(None, &RunId("idle".into())).unwrap());
        std::thread::sleep(Duration::from_millis(60));
        counts.prune();
        assert_eq!(counts.len(), 1, "the busy run is kept");
        drop(busy);
        std::thread::sleep(Duration::from_millis(60));
        counts.prune();
        assert!(counts.is_empty());
    }

    #[test]
    fn runs_are_bounded_and_busy_ones_are_kept() {
        let counts = InFlight::default();
        let busy: Vec<Held> = (0..MAX_RUNS)
            .map(|i| counts.enter(None, &RunId(format!("r{i}"))).unwrap())
            .collect();
        assert!(counts.enter(None, &RunId("one-more".into())).is_err());
        drop(busy);
        assert!(counts.enter(None, &RunId("one-more".into())).is_ok());
        assert_eq!(counts.len(), MAX_RUNS);
    }
}

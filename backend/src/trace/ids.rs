//! Which run and request a traced request belongs to: its `run` and `rid` query parameters,
//! checked, and their description for the OpenAPI document.

use std::sync::Arc;

use protocol::{
    REQUEST_PARAM, RUN_PARAM,
    trace::{RequestId, RunId},
};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;

use crate::error::AppError;

use super::http_half::Exchange;

/// Parses a run id from a path or query, refusing bad ones with a 400.
pub fn parse_run_id(s: &str) -> Result<RunId, AppError> {
    if RunId::is_valid(s) {
        Ok(RunId(s.to_owned()))
    } else {
        Err(AppError::BadRequest(format!(
            "invalid run id {s:?}: use 1 to {} characters of A-Z a-z 0-9 - _",
            RunId::MAX_LEN
        )))
    }
}

/// The run and request a traced request belongs to, from its query string. The middleware puts
/// it in the request's extensions, inside its record of the exchange, so handlers can trace
/// their own hops (`Option<TraceIds>`).
#[derive(Debug, Clone, PartialEq)]
pub struct TraceIds {
    pub run: RunId,
    /// The id the page gave the exchange (`rid`): the same for every reconnection of one
    /// EventSource, so pushed events are named after it.
    pub request: RequestId,
    /// The id this HTTP request is traced under: `request`, or for an EventSource
    /// reconnecting with `Last-Event-ID: N`, `{rid}-rN` (both observers derive the same).
    pub connection: RequestId,
}

impl TraceIds {
    /// `Ok(None)` when the request carries no `run` (an untraced call, e.g. from curl).
    pub fn from_query(query: Option<&str>) -> Result<Option<TraceIds>, AppError> {
        let mut run = None;
        let mut rid = None;
        for pair in query.unwrap_or("").split('&') {
            match pair.split_once('=') {
                Some((k, v)) if k == RUN_PARAM => run = Some(v),
                Some((k, v)) if k == REQUEST_PARAM => rid = Some(v),
                _ => {}
            }
        }
        let Some(run) = run else { return Ok(None) };
        let run = parse_run_id(run)?;
        let rid = rid.ok_or_else(|| {
            AppError::BadRequest(format!(
                "a traced request needs `{REQUEST_PARAM}` beside `{RUN_PARAM}`"
            ))
        })?;
        if !RunId::is_valid(rid) {
            return Err(AppError::BadRequest(format!("invalid request id {rid:?}")));
        }
        Ok(Some(TraceIds {
            run,
            request: RequestId(rid.to_owned()),
            connection: RequestId(rid.to_owned()),
        }))
    }
}

/// A handler's `TraceIds`: the ids the recording middleware found in the query. Required (a
/// per-run demo's requests) it refuses a request without them with a 400; as
/// `Option<TraceIds>` an untraced request gets `None`.
impl<S: Send + Sync> FromRequestParts<S> for TraceIds {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        <TraceIds as OptionalFromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .ok()
            .flatten()
            .ok_or_else(|| {
                AppError::BadRequest(
                    "this demo's requests need `run` and `rid` query parameters".into(),
                )
            })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for TraceIds {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        // The middleware's record of the exchange holds them: made once per request, shared.
        Ok(parts
            .extensions
            .get::<Arc<Exchange>>()
            .map(|exchange| exchange.ids.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_come_from_the_query() {
        assert_eq!(TraceIds::from_query(None).unwrap(), None);
        assert_eq!(TraceIds::from_query(Some("a=1")).unwrap(), None);
        let ids = TraceIds::from_query(Some("x=1&run=abc&rid=7"))
            .unwrap()
            .unwrap();
        assert_eq!(ids.run, RunId("abc".into()));
        assert_eq!(ids.request, RequestId("7".into()));
        assert!(TraceIds::from_query(Some("run=abc")).is_err());
        assert!(TraceIds::from_query(Some("run=a%20b&rid=1")).is_err());
        assert!(TraceIds::from_query(Some("run=ok&rid=<script>")).is_err());
    }
}

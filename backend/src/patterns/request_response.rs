//! The request/response demo: `POST /api/echo` parses an order in JSON, XML or MessagePack,
//! "processes" it for the asked time, and answers in the same format, timing each phase.

use axum::{
    body::{Body, Bytes},
    extract::{FromRequestParts, Query},
    http::{HeaderMap, Uri, header, request::Parts},
    response::{IntoResponse, Response},
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use protocol::ApiError;
use protocol::echo::{self, EchoQuery, EchoReply, Format, MAX_BODY_BYTES, MAX_PROCESS_MS, Order};

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{AppState, error::AppError, trace::Phases};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(echo))
}

#[utoipa::path(post, path = "/echo", tag = "request-response",
    params(EchoQuery),
    request_body(content(
        (Order = "application/json"), (Order = "application/xml"), (Order = "application/msgpack"))),
    responses((status = 200, description = "The order summed and echoed, in the request's format",
            content((EchoReply = "application/json"), (EchoReply = "application/xml"), (EchoReply = "application/msgpack"))),
        (status = 400, description = "Malformed body", body = ApiError), (status = 413, description = "Body over 1 MiB", body = ApiError),
        (status = 415, description = "Missing or unsupported Content-Type", body = ApiError), (status = 422, description = "process_ms out of range or not a number", body = ApiError)))]
async fn echo(BodyFormat(format): BodyFormat, uri: Uri, body: Body) -> Result<Response, AppError> {
    let query = echo_query(&uri)?;
    if query.process_ms > MAX_PROCESS_MS {
        return Err(AppError::Unprocessable(format!(
            "process_ms must be between 0 and {MAX_PROCESS_MS}, got {}",
            query.process_ms
        )));
    }
    let body = read_body(body).await?;

    let mut phases = Phases::default();
    let order = phases.time("parse", || decode(format, &body))?;
    // The phases follow one another: each after the first starts when the last ended (one
    // reading of the clock each, not two).
    let total_cents = phases
        .time_next_async("process", async {
            // No timer for no processing time: a zero sleep still goes through the timer driver,
            // which cost the echo a third of its requests per second (request/response bench).
            if query.process_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(query.process_ms.into())).await;
            }
            order.items.iter().map(|i| i.price_cents).sum::<u64>()
        })
        .await;
    let reply = EchoReply {
        items: u32::try_from(order.items.len()).unwrap_or(u32::MAX),
        total_cents,
        format,
        order,
    };
    let encoded = phases.time_next("serialize", || encode(format, &reply))?;
    let response = ([(header::CONTENT_TYPE, format.content_type())], encoded).into_response();
    Ok(phases.attach(response))
}

/// The body format the request's `Content-Type` names; a missing or other type is a 415 before
/// the body is read. Read in place: a `HeaderMap` argument copies the whole map per request.
struct BodyFormat(Format);

impl<S: Send + Sync> FromRequestParts<S> for BodyFormat {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<BodyFormat, AppError> {
        request_format(&parts.headers).map(BodyFormat)
    }
}

/// The echo's query. The usual one (`process_ms` absent, or plain digits once, nothing escaped)
/// is read by hand; any other goes through axum's `Query`, which stays the reference for what is
/// accepted and for the 422's words. `Query` on every request cost the echo about 2,200
/// instructions (callgrind), a third of what tracing it costs.
fn echo_query(uri: &Uri) -> Result<EchoQuery, AppError> {
    match plain_process_ms(uri.query()) {
        Some(process_ms) => Ok(EchoQuery { process_ms }),
        None => Query::<EchoQuery>::try_from_uri(uri)
            .map(|Query(query)| query)
            .map_err(|e| AppError::Unprocessable(e.body_text())),
    }
}

/// `process_ms` where a form decoder surely reads the same (0 when absent); `None` for anything
/// it might read otherwise: escapes, a repeated or empty key, a value not plain decimal digits or
/// over `u32::MAX`.
fn plain_process_ms(query: Option<&str>) -> Option<u32> {
    const KEY: &str = "process_ms";
    let Some(query) = query else { return Some(0) };
    if query.contains(['%', '+']) {
        return None;
    }
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == KEY {
            if found.is_some() || value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            found = Some(value.parse().ok()?);
        }
    }
    Some(found.unwrap_or(0))
}

/// The whole body, at most [`MAX_BODY_BYTES`] (413 beyond). Read here rather than by the `Bytes`
/// extractor under a `DefaultBodyLimit` layer: the layer wrapped the route in one more boxed
/// service, cloned on every request (about 1,300 instructions of the echo's, callgrind).
async fn read_body(body: Body) -> Result<Bytes, AppError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(AppError::PayloadTooLarge(format!(
            "request body is over the {MAX_BODY_BYTES}-byte limit ({} KiB)",
            MAX_BODY_BYTES / 1024
        ))),
        // In the words of axum's own rejection.
        Err(e) => Err(AppError::BadRequest(format!(
            "Failed to buffer the request body: {e}"
        ))),
    }
}

fn request_format(headers: &HeaderMap) -> Result<Format, AppError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            AppError::UnsupportedMediaType(
                "missing Content-Type: send application/json, application/xml or application/msgpack"
                    .into(),
            )
        })?;
    Format::from_content_type(value).ok_or_else(|| {
        AppError::UnsupportedMediaType(format!(
            "unsupported Content-Type {value:?}: send application/json, application/xml or application/msgpack"
        ))
    })
}

/// Parses an order in `format`; a malformed body is a 400 naming the problem.
pub fn decode(format: Format, body: &[u8]) -> Result<Order, AppError> {
    echo::decode_order(format, body)
        .map_err(|e| AppError::BadRequest(format!("malformed {} body: {e}", format.as_str())))
}

/// Encodes the reply in `format`.
pub fn encode(format: Format, reply: &EchoReply) -> Result<Vec<u8>, AppError> {
    echo::encode_reply(format, reply)
        .map_err(|e| AppError::Internal(format!("cannot encode reply: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_reads_as_axum_s_query_reads_it() {
        for query in [
            "",
            "run=a&rid=b",
            "process_ms=0",
            "run=a&process_ms=20&rid=b",
            "process_ms=007",
            "a=1&&process_ms=3&",
            "process_ms=4294967295",
            "process_ms=4294967296",
            "process_ms=99999999999999999999",
            "process_ms=",
            "process_ms",
            "process_ms=abc",
            "process_ms=-1",
            "process_ms=+5",
            "process_ms=1&process_ms=2",
            "process%5Fms=5",
            "process_ms=%35",
            "process_ms=1.5",
            "process_ms=1=2",
        ] {
            let uri: Uri = format!("/echo?{query}").parse().unwrap();
            let reference = Query::<EchoQuery>::try_from_uri(&uri)
                .map(|Query(q)| q.process_ms)
                .map_err(|e| e.body_text());
            let ours = echo_query(&uri).map(|q| q.process_ms).map_err(|e| match e {
                AppError::Unprocessable(text) => text,
                other => panic!("{query}: {other}"),
            });
            assert_eq!(ours, reference, "{query}");
        }
        let bare: Uri = "/echo".parse().unwrap();
        assert_eq!(echo_query(&bare).unwrap().process_ms, 0);
        assert_eq!(plain_process_ms(Some("run=a&process_ms=20")), Some(20));
        assert_eq!(plain_process_ms(Some("process_ms=1&process_ms=2")), None);
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        for format in Format::ALL {
            let err = decode(format, b"{\"customer\": ").unwrap_err();
            assert!(matches!(err, AppError::BadRequest(_)), "{format:?}: {err}");
        }
    }
}

//! The WebSocket handshake, done here rather than by axum's `WebSocketUpgrade`, so that the
//! upgraded connection can be taken back from hyper and shared with a publisher
//! ([`SocketIo::of`]). It checks what axum checks (RFC 6455 over HTTP/1.1, RFC 8441 over
//! HTTP/2) and refuses the same way, with a JSON error.

use std::future::Future;

use axum::{
    Json,
    body::Body,
    extract::FromRequestParts,
    http::{
        HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version, header, request::Parts,
    },
    response::{IntoResponse, Response},
};
use hyper::upgrade::OnUpgrade;
use protocol::ApiError;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};

use super::shared_socket::SocketIo;

/// A checked WebSocket upgrade request, waiting to be accepted.
pub struct Handshake {
    /// `Sec-WebSocket-Key` over HTTP/1.1; none over HTTP/2 (extended CONNECT).
    key: Option<HeaderValue>,
    on_upgrade: OnUpgrade,
}

/// Why a request is not a WebSocket upgrade: the status axum answers it with, and why.
pub struct NotAnUpgrade(StatusCode, &'static str);

impl IntoResponse for NotAnUpgrade {
    fn into_response(self) -> Response {
        let NotAnUpgrade(status, error) = self;
        (
            status,
            Json(ApiError {
                error: error.into(),
            }),
        )
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Handshake {
    type Rejection = NotAnUpgrade;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let bad = |why| NotAnUpgrade(StatusCode::BAD_REQUEST, why);
        let key = if parts.version <= Version::HTTP_11 {
            if parts.method != Method::GET {
                return Err(NotAnUpgrade(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "a WebSocket upgrade is a GET request",
                ));
            }
            if !header_lists(&parts.headers, header::CONNECTION, "upgrade") {
                return Err(bad("the Connection header does not name `upgrade`"));
            }
            if !header_is(&parts.headers, header::UPGRADE, "websocket") {
                return Err(bad("the Upgrade header is not `websocket`"));
            }
            let key = parts.headers.get(header::SEC_WEBSOCKET_KEY);
            Some(
                key.ok_or(bad("the Sec-WebSocket-Key header is missing"))?
                    .clone(),
            )
        } else {
            if parts.method != Method::CONNECT {
                return Err(NotAnUpgrade(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "a WebSocket over HTTP/2 is a CONNECT request",
                ));
            }
            let protocol = parts.extensions.get::<hyper::ext::Protocol>();
            if protocol.is_none_or(|p| p.as_str() != "websocket") {
                return Err(bad("the :protocol pseudo-header is not `websocket`"));
            }
            None
        };
        if !header_is(&parts.headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(bad("the Sec-WebSocket-Version header is not 13"));
        }
        let on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or(NotAnUpgrade(
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded to a WebSocket",
        ))?;
        Ok(Handshake { key, on_upgrade })
    }
}

impl Handshake {
    /// Answers the handshake and, once the connection is upgraded, runs `conversation` on the
    /// socket (within `config`'s bounds) in a task of its own.
    pub fn accept<F, Fut>(self, config: WebSocketConfig, conversation: F) -> Response
    where
        F: FnOnce(WebSocketStream<SocketIo>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(err) => {
                    tracing::debug!(cause = %err, "WebSocket upgrade failed");
                    return;
                }
            };
            let (io, read_ahead) = SocketIo::of(upgraded);
            let socket =
                WebSocketStream::from_partially_read(io, read_ahead, Role::Server, Some(config))
                    .await;
            conversation(socket).await;
        });
        match self.key {
            Some(key) => Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header(header::CONNECTION, HeaderValue::from_static("upgrade"))
                .header(header::UPGRADE, HeaderValue::from_static("websocket"))
                .header(
                    header::SEC_WEBSOCKET_ACCEPT,
                    derive_accept_key(key.as_bytes()),
                )
                .body(Body::empty())
                .expect("a valid response"),
            // HTTP/2: a 200 with no body opens the stream (RFC 9113, 8.5).
            None => Response::new(Body::empty()),
        }
    }
}

/// Whether `name`'s value is `value`, ignoring case.
fn header_is(headers: &HeaderMap, name: HeaderName, value: &str) -> bool {
    headers
        .get(&name)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

/// Whether `name`'s value lists `token` (comma-separated, ignoring case).
fn header_lists(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(&name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

//! One application instance behind the balancer: `POST /login` opens a session, `GET /profile`
//! needs one. Where the session lives depends on the mode: this instance's own memory
//! (stateful), a signed token in the cookie, or the store both instances share (stateless).

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, Uri, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use protocol::{
    pairing,
    stateful_stateless::{Login, MAX_USER_LEN, SessionMode, SessionView},
    trace::Kind,
};

use super::{
    session_store::{MemorySessions, Session, SessionStore},
    token,
};
use crate::{
    error::AppError,
    extract::AppJson,
    server::client::ClientId,
    trace::{Hop, TraceHub, Tracer},
};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "session";

/// What one running instance has.
pub struct Instance {
    /// Its lifeline: `instance-a` or `instance-b`.
    pub name: &'static str,
    pub mode: SessionMode,
    /// Starts at 1, one more per restart (to explain an empty memory).
    pub generation: u32,
    /// Its own memory: the sessions of stateful mode. Gone with the instance.
    pub memory: Arc<MemorySessions>,
    /// The store every instance shares (stateless mode with a store).
    pub store: Arc<dyn SessionStore>,
    /// The client that started the cluster: its sessions count against this client's share.
    pub client: Option<ClientId>,
    pub hub: TraceHub,
}

pub fn router(instance: Arc<Instance>) -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/profile", get(profile))
        .fallback(|| async { AppError::NotFound("an instance serves /login and /profile".into()) })
        .with_state(instance)
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn valid_user(user: &str) -> Result<(), AppError> {
    let ok = !user.is_empty()
        && user.len() <= MAX_USER_LEN
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(AppError::Unprocessable(format!(
            "user must be 1 to {MAX_USER_LEN} characters of A-Z a-z 0-9 - _, got {user:?}"
        )))
    }
}

impl Instance {
    /// Calls the shared store, drawn as a hop to the `store` lifeline.
    async fn via_store<T>(
        &self,
        tracer: &Tracer,
        label: String,
        call: impl Future<Output = Result<T, AppError>>,
        answer: impl FnOnce(&T) -> String,
    ) -> Result<T, AppError> {
        tracer.record(|rid| {
            Hop::new(
                Kind::Request,
                self.name,
                "store",
                pairing::hop(rid, "store"),
            )
            .label(label)
        });
        let result = call.await;
        let said = match &result {
            Ok(t) => answer(t),
            Err(e) => format!("error: {e}"),
        };
        tracer.record(|rid| {
            Hop::new(
                Kind::Response,
                "store",
                self.name,
                pairing::hop(rid, "store"),
            )
            .label(said)
        });
        result
    }

    fn view(&self, session: Session) -> SessionView {
        SessionView {
            user: session.user,
            instance: self.name.to_owned(),
            mode: self.mode,
            requests: session.requests,
        }
    }

    /// A 401, with the reason drawn as a note on this instance's lifeline.
    fn refuse(&self, tracer: &Tracer, why: String) -> AppError {
        tracer.record(|rid| {
            Hop::note(self.name, pairing::hop(rid, "why")).label(format!("401: {why}"))
        });
        AppError::Unauthorized(format!("{}: {why}", self.name))
    }
}

async fn login(
    State(me): State<Arc<Instance>>,
    uri: Uri,
    AppJson(Login { user }): AppJson<Login>,
) -> Result<Response, AppError> {
    valid_user(&user)?;
    let tracer = Tracer::from_uri(&me.hub, &uri);
    let credential = match me.mode {
        SessionMode::Memory => me.memory.create(me.client, &user).await?,
        SessionMode::Token => token::sign(&user),
        SessionMode::Store => {
            me.via_store(
                &tracer,
                format!("create session for {user}"),
                me.store.create(me.client, &user),
                |id| format!("stored {id}"),
            )
            .await?
        }
    };
    tracing::info!(instance = me.name, %user, mode = me.mode.as_str(), "logged in");
    let cookie = format!("{SESSION_COOKIE}={credential}; Path=/api/lb; HttpOnly; SameSite=Strict");
    let view = me.view(Session { user, requests: 0 });
    Ok(([(header::SET_COOKIE, cookie)], Json(view)).into_response())
}

async fn profile(
    State(me): State<Arc<Instance>>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<SessionView>, AppError> {
    let tracer = Tracer::from_uri(&me.hub, &uri);
    let Some(credential) = cookie(&headers, SESSION_COOKIE) else {
        return Err(me.refuse(&tracer, "no session cookie: log in first".into()));
    };
    let session = match me.mode {
        SessionMode::Memory => me.memory.touch(credential).await?.ok_or_else(|| {
            let restarted = if me.generation > 1 {
                " (this instance was restarted: its memory started empty)"
            } else {
                ""
            };
            me.refuse(
                &tracer,
                format!(
                    "no session {credential} in {}'s memory: a session lives only in the \
                     instance that created it{restarted}",
                    me.name
                ),
            )
        })?,
        SessionMode::Token => {
            let user = token::verify(credential)
                .map_err(|why| me.refuse(&tracer, format!("token refused: {why}")))?;
            Session { user, requests: 0 }
        }
        SessionMode::Store => me
            .via_store(
                &tracer,
                format!("get session {credential}"),
                me.store.touch(credential),
                |found| match found {
                    Some(s) => format!("found: {}", s.user),
                    None => "no such session".into(),
                },
            )
            .await?
            .ok_or_else(|| {
                me.refuse(
                    &tracer,
                    format!("the store has no session {credential} (unknown or expired)"),
                )
            })?,
    };
    Ok(Json(me.view(session)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "a=1; session=s-9".parse().unwrap());
        assert_eq!(cookie(&headers, "session"), Some("s-9"));
        assert_eq!(cookie(&headers, "b"), None);
    }

    #[test]
    fn user_names_are_checked() {
        assert!(valid_user("ada_1").is_ok());
        assert!(valid_user("").is_err());
        assert!(valid_user("a.b").is_err());
        assert!(valid_user(&"x".repeat(MAX_USER_LEN + 1)).is_err());
    }
}

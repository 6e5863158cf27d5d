//! Where sessions are kept, behind a trait so the engine can change: the in-memory engine here
//! (bounded, expiring) serves both as one instance's private memory and as the store every
//! instance shares. A Redis engine (for `--redis-url`) implements the same trait.

use std::{future::Future, time::Duration};

use futures_util::future::BoxFuture;

use crate::{
    error::AppError,
    server::expiring::{Expiring, WhenFull},
};

/// Sessions one keeper holds at once; a login beyond that is a 429 until some expire.
pub const MAX_SESSIONS: usize = 1_000;
/// A session unused this long is forgotten.
pub const SESSION_TTL: Duration = Duration::from_secs(10 * 60);

/// One logged-in user as its keeper knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    /// Requests made with it so far.
    pub requests: u32,
}

/// A keeper of sessions. Async, because a shared engine is usually across the network.
pub trait SessionStore: Send + Sync {
    /// Creates a session for `user`; returns its id.
    fn create<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<String, AppError>>;
    /// Counts one more request on session `id` and returns it, or `None` if it is unknown or
    /// expired.
    fn touch<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Session>, AppError>>;
    /// Forgets expired sessions, where the engine does not do so itself.
    fn prune(&self) {}
    /// Sessions held in this process, where they are.
    fn held(&self) -> Option<usize> {
        None
    }
}

/// Sessions in this process's memory.
pub struct MemorySessions {
    /// Every session, touched by each request made with it: forgotten [`SESSION_TTL`] unused
    /// (unless `--store-ttl` says otherwise); beyond [`MAX_SESSIONS`], logins are refused.
    sessions: Expiring<String, Session>,
}

impl Default for MemorySessions {
    fn default() -> Self {
        MemorySessions::with_ttl(SESSION_TTL)
    }
}

impl MemorySessions {
    /// An empty store forgetting sessions unused for `ttl`.
    pub fn with_ttl(ttl: Duration) -> MemorySessions {
        MemorySessions {
            sessions: Expiring::new(ttl).bounded(MAX_SESSIONS, WhenFull::Refuse),
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn create_now(&self, user: &str) -> Result<String, AppError> {
        let id = format!("s-{:016x}", rand::random::<u64>());
        let session = Session {
            user: user.to_owned(),
            requests: 0,
        };
        self.sessions.insert(id.clone(), session).map_err(|_| {
            AppError::TooManyRequests(format!(
                "{MAX_SESSIONS} sessions are kept already; try again later"
            ))
        })?;
        Ok(id)
    }

    fn touch_now(&self, id: &str) -> Option<Session> {
        let mut sessions = self.sessions.lock();
        let session = sessions.touch(&id.to_owned())?;
        session.requests += 1;
        Some(session.clone())
    }
}

impl SessionStore for MemorySessions {
    fn create<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<String, AppError>> {
        Box::pin(async move { self.create_now(user) })
    }

    fn touch<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Session>, AppError>> {
        Box::pin(async move { Ok(self.touch_now(id)) })
    }

    fn prune(&self) {
        self.sessions.prune();
    }

    fn held(&self) -> Option<usize> {
        Some(self.len())
    }
}

/// Sessions in Redis (`--redis-url`): every instance of every server process sees them. A
/// session is a hash `patternscope:session:{id}` (user, requests) that expires after
/// [`SESSION_TTL`] unused, so nothing is kept without bound.
pub struct RedisSessions {
    commands: redis::aio::ConnectionManager,
}

/// Longest a session lookup waits on Redis before the request is refused as unavailable.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

impl RedisSessions {
    /// Connects to `url`, failing within a few seconds if Redis does not answer.
    pub async fn connect(url: &str) -> Result<RedisSessions, String> {
        let client = redis::Client::open(url).map_err(|e| format!("bad Redis URL {url:?}: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(2);
        let commands = tokio::time::timeout(
            REDIS_TIMEOUT * 2,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| format!("Redis at {url} did not answer"))?
        .map_err(|e| format!("cannot reach Redis at {url}: {e}"))?;
        Ok(RedisSessions { commands })
    }

    fn key(id: &str) -> String {
        format!("patternscope:session:{id}")
    }

    async fn bounded<T>(work: impl Future<Output = redis::RedisResult<T>>) -> Result<T, AppError> {
        match tokio::time::timeout(REDIS_TIMEOUT, work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(AppError::Unavailable(format!(
                "the session store (Redis): {e}"
            ))),
            Err(_) => Err(AppError::Unavailable(
                "the session store (Redis) did not answer".into(),
            )),
        }
    }
}

impl SessionStore for RedisSessions {
    fn create<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<String, AppError>> {
        Box::pin(async move {
            let id = format!("s-{:016x}", rand::random::<u64>());
            let key = Self::key(&id);
            let mut commands = self.commands.clone();
            let ttl = SESSION_TTL.as_secs() as i64;
            Self::bounded(
                redis::pipe()
                    .hset(&key, "user", user)
                    .ignore()
                    .hset(&key, "requests", 0)
                    .ignore()
                    .expire(&key, ttl)
                    .ignore()
                    .query_async::<()>(&mut commands),
            )
            .await?;
            Ok(id)
        })
    }

    fn touch<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Session>, AppError>> {
        Box::pin(async move {
            let key = Self::key(id);
            let mut commands = self.commands.clone();
            let user: Option<String> = Self::bounded(
                redis::cmd("HGET")
                    .arg(&key)
                    .arg("user")
                    .query_async(&mut commands),
            )
            .await?;
            let Some(user) = user else { return Ok(None) };
            let ttl = SESSION_TTL.as_secs() as i64;
            let (requests,): (u32,) = Self::bounded(
                redis::pipe()
                    .hincr(&key, "requests", 1)
                    .expire(&key, ttl)
                    .ignore()
                    .query_async(&mut commands),
            )
            .await?;
            Ok(Some(Session { user, requests }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unused_sessions_expire_and_the_sweep_forgets_them() {
        let store = MemorySessions::with_ttl(Duration::from_millis(40));
        let old = store.create("ada").await.unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(store.touch(&old).await.unwrap(), None, "expired on use");
        store.create("bob").await.unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(store.held(), Some(1));
        store.prune();
        assert_eq!(store.held(), Some(0), "forgotten unused");
    }

    #[tokio::test]
    async fn sessions_count_requests_and_unknown_ids_are_none() {
        let store = MemorySessions::default();
        let id = store.create("ada").await.unwrap();
        assert_eq!(store.touch(&id).await.unwrap().unwrap().requests, 1);
        assert_eq!(store.touch(&id).await.unwrap().unwrap().requests, 2);
        assert_eq!(store.touch("s-nope").await.unwrap(), None);
        assert_eq!(store.len(), 1);
    }
}

//! Where sessions are kept, behind a trait so the engine can change: the in-memory engine here
//! (bounded, expiring) serves both as one instance's private memory and as the store every
//! instance shares. A Redis engine (for `--redis-url`) implements the same trait.

use std::{future::Future, time::Duration};

use futures_util::future::BoxFuture;

use crate::{
    error::AppError,
    server::{
        client::ClientId,
        expiring::{CLASS_CLIENTS, Expiring, WhenFull},
    },
};

/// Sessions of one client's clusters the shared store holds at once: the demo logs in one or
/// two users a run. Past it, a login is a 429 with `Retry-After` until one expires. In Redis,
/// where sessions are not listed per client, it is the logins one client may make per
/// [`SESSION_TTL`] instead.
pub const SESSIONS_PER_CLIENT: usize = 16;
/// Sessions the shared in-memory store holds at once: every client's share for
/// [`CLASS_CLIENTS`] clients (768).
pub const MAX_SESSIONS: usize = SESSIONS_PER_CLIENT * CLASS_CLIENTS;
/// Sessions one instance's own memory holds at once (a cluster is one client's).
pub const SESSIONS_PER_INSTANCE: usize = 64;
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
    /// Creates a session for `user`, counted against `client`'s share; returns its id.
    fn create<'a>(
        &'a self,
        client: Option<ClientId>,
        user: &'a str,
    ) -> BoxFuture<'a, Result<String, AppError>>;
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
    /// (unless `--store-ttl` says otherwise); beyond its client's share or the capacity
    /// ([`MAX_SESSIONS`] shared, [`SESSIONS_PER_INSTANCE`] private), logins are refused.
    sessions: Expiring<String, Session>,
}

impl Default for MemorySessions {
    fn default() -> Self {
        MemorySessions::with_ttl(SESSION_TTL)
    }
}

impl MemorySessions {
    /// An empty store for every cluster to share, forgetting sessions unused for `ttl`.
    pub fn with_ttl(ttl: Duration) -> MemorySessions {
        MemorySessions {
            sessions: Expiring::new(ttl)
                .bounded(MAX_SESSIONS, WhenFull::Refuse)
                .shared(SESSIONS_PER_CLIENT, "sessions"),
        }
    }

    /// An empty store for one instance's own memory.
    pub fn private() -> MemorySessions {
        MemorySessions {
            sessions: Expiring::new(SESSION_TTL).bounded(SESSIONS_PER_INSTANCE, WhenFull::Refuse),
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn create_now(&self, client: Option<ClientId>, user: &str) -> Result<String, AppError> {
        let id = format!("s-{:016x}", rand::random::<u64>());
        let session = Session {
            user: user.to_owned(),
            requests: 0,
        };
        self.sessions.insert_for(client, id.clone(), session)?;
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
    fn create<'a>(
        &'a self,
        client: Option<ClientId>,
        user: &'a str,
    ) -> BoxFuture<'a, Result<String, AppError>> {
        Box::pin(async move { self.create_now(client, user) })
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

    /// Counts one login of `client` in its window of [`SESSION_TTL`] (which starts at its first
    /// login): a 429 with `Retry-After` (the window's rest) past [`SESSIONS_PER_CLIENT`].
    /// Shared by every server process on the same Redis, as the sessions are.
    async fn count_login(&self, client: ClientId) -> Result<(), AppError> {
        let key = format!("patternscope:logins-of:{client}");
        let mut commands = self.commands.clone();
        let (count, mut left): (u64, i64) = Self::bounded(
            redis::pipe()
                .incr(&key, 1)
                .ttl(&key)
                .query_async(&mut commands),
        )
        .await?;
        if left < 0 {
            // New (or left without an expiry by a process that stopped in between).
            left = SESSION_TTL.as_secs() as i64;
            Self::bounded(
                redis::cmd("EXPIRE")
                    .arg(&key)
                    .arg(left)
                    .query_async::<()>(&mut commands),
            )
            .await?;
        }
        if count > SESSIONS_PER_CLIENT as u64 {
            let seconds = left.max(1) as u64;
            return Err(AppError::RateLimited {
                message: format!(
                    "one client may log in {SESSIONS_PER_CLIENT} sessions every {} minutes; retry in {seconds} s",
                    SESSION_TTL.as_secs() / 60
                ),
                retry_after: Duration::from_secs(seconds),
            });
        }
        Ok(())
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
    fn create<'a>(
        &'a self,
        client: Option<ClientId>,
        user: &'a str,
    ) -> BoxFuture<'a, Result<String, AppError>> {
        Box::pin(async move {
            let id = format!("s-{:016x}", rand::random::<u64>());
            let key = Self::key(&id);
            let mut commands = self.commands.clone();
            let ttl = SESSION_TTL.as_secs() as i64;
            if let Some(client) = client {
                self.count_login(client).await?;
            }
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
        let old = store.create(None, "ada").await.unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(store.touch(&old).await.unwrap(), None, "expired on use");
        store.create(None, "bob").await.unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(store.held(), Some(1));
        store.prune();
        assert_eq!(store.held(), Some(0), "forgotten unused");
    }

    #[tokio::test]
    async fn sessions_count_requests_and_unknown_ids_are_none() {
        let store = MemorySessions::default();
        let id = store.create(None, "ada").await.unwrap();
        assert_eq!(store.touch(&id).await.unwrap().unwrap().requests, 1);
        assert_eq!(store.touch(&id).await.unwrap().unwrap().requests, 2);
        assert_eq!(store.touch("s-nope").await.unwrap(), None);
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn a_client_past_its_share_of_sessions_is_refused_and_another_is_not() {
        let client = |n| Some(ClientId::of(std::net::IpAddr::from([10, 0, 0, n])));
        let store = MemorySessions::default();
        for _ in 0..SESSIONS_PER_CLIENT {
            store.create(client(1), "ada").await.unwrap();
        }
        let AppError::RateLimited { message, .. } =
            store.create(client(1), "ada").await.unwrap_err()
        else {
            panic!("a 429 with Retry-After")
        };
        assert!(
            message.contains(&format!(
                "one client may hold {SESSIONS_PER_CLIENT} sessions"
            )),
            "{message}"
        );
        store.create(client(2), "bob").await.unwrap();
    }
}

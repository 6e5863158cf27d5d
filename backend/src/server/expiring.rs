//! The one expiring map every store is made of: entries forgotten a while after they were last
//! touched (unless in use), at most so many of them, each client ([`ClientId`]) at most its
//! share of them, and what happens to one more when full.
//!
//! Fairness: an entry carries the client that made it. Past its share a client is refused (429
//! with `Retry-After`) or, in a store that evicts, loses its own least recent idle entry; a full
//! store refuses, or evicts an idle entry of the client holding the most. An entry in use is
//! never evicted, whoever holds it.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use super::client::ClientId;
use crate::error::AppError;

/// Clients every server-wide store is sized for: a class of 30 learners, 2 abusers, and room
/// for the teacher and for learners who come back from a new address. A store's capacity is
/// its share per client times this, so that the class never meets a full store.
pub const CLASS_CLIENTS: usize = 48;

/// Retry-After when what holds the room is in use and so has no expiry to wait for.
pub const BUSY_RETRY: Duration = Duration::from_secs(5);

/// What a full store does with a new key, once what has expired is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Refuses it: the caller answers 429 until entries expire.
    Refuse,
    /// Forgets the least recently touched entry not in use; refuses when every entry is in use.
    EvictLeastRecent,
}

/// How many entries one client may hold, and what they are called in the refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// Entries one client may hold at once.
    pub per_client: usize,
    /// What an entry is, plural, for the refusal ("clusters").
    pub what: &'static str,
}

/// A new entry refused, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The client holds its whole share, none of which could be evicted.
    OverShare {
        share: Share,
        /// Until the client's oldest idle entry expires ([`BUSY_RETRY`] when all are in use).
        retry_after: Duration,
    },
    /// The store holds as many entries as it may, none expired or evictable.
    Full {
        capacity: usize,
        what: &'static str,
        /// Until the oldest idle entry expires ([`BUSY_RETRY`] when all are in use).
        retry_after: Duration,
    },
}

impl Refused {
    /// When to try again, whole seconds, at least one.
    pub fn retry_after(&self) -> Duration {
        let (Refused::OverShare { retry_after, .. } | Refused::Full { retry_after, .. }) = self;
        Duration::from_secs(retry_after.as_secs_f64().ceil().max(1.0) as u64)
    }
}

impl From<Refused> for AppError {
    /// A 429 with `Retry-After`, naming what and how many.
    fn from(refused: Refused) -> AppError {
        let retry_after = refused.retry_after();
        let seconds = retry_after.as_secs();
        let message = match refused {
            Refused::OverShare { share, .. } => format!(
                "one client may hold {n} {what} at once; you hold {n}: end one or retry in {seconds} s",
                n = share.per_client,
                what = share.what,
            ),
            Refused::Full { capacity, what, .. } => format!(
                "the server holds {capacity} {what} already, as many as it keeps; retry in {seconds} s"
            ),
        };
        AppError::RateLimited {
            message,
            retry_after,
        }
    }
}

/// One entry, when it was last touched, and who made it.
struct Kept<V> {
    value: V,
    touched: Instant,
    /// The client whose share it counts against; `None` (made by the server itself, or a test
    /// without a peer) counts against no share, only the capacity.
    owner: Option<ClientId>,
}

/// A map whose entries expire `ttl` after they were last touched, bounded in number. Cheap to
/// clone: clones share the entries.
pub struct Expiring<K, V> {
    // std Mutex: never held across an await; every operation is a short map update.
    entries: Arc<Mutex<HashMap<K, Kept<V>>>>,
    /// How long an untouched entry is kept.
    ttl: Duration,
    /// Entries kept at once.
    capacity: usize,
    /// What one more entry does when `capacity` are kept and none has expired.
    when_full: WhenFull,
    /// An entry this says is in use neither expires nor is evicted, however old.
    in_use: Option<fn(&V) -> bool>,
    /// What an evicted entry is, for the log line; evictions are not logged without it.
    evicts: Option<&'static str>,
    /// How many entries one client may hold; unlimited (up to `capacity`) without it.
    share: Option<Share>,
}

impl<K, V> Clone for Expiring<K, V> {
    fn clone(&self) -> Self {
        Expiring {
            entries: self.entries.clone(),
            ttl: self.ttl,
            capacity: self.capacity,
            when_full: self.when_full,
            in_use: self.in_use,
            evicts: self.evicts,
            share: self.share,
        }
    }
}

impl<K: Eq + Hash, V> Expiring<K, V> {
    /// An empty, unbounded map forgetting entries untouched for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Expiring {
            entries: Arc::default(),
            ttl,
            capacity: usize::MAX,
            when_full: WhenFull::Refuse,
            in_use: None,
            evicts: None,
            share: None,
        }
    }

    /// The same map, keeping at most `capacity` (at least one) entries.
    pub fn bounded(mut self, capacity: usize, when_full: WhenFull) -> Self {
        assert!(capacity > 0, "a store keeps at least one entry");
        self.capacity = capacity;
        self.when_full = when_full;
        self
    }

    /// The same map, each client holding at most `per_client` (at least one) entries, called
    /// `what` in the refusal.
    pub fn shared(mut self, per_client: usize, what: &'static str) -> Self {
        assert!(per_client > 0, "a share is at least one entry");
        self.share = Some(Share { per_client, what });
        self
    }

    /// The same map, never forgetting an entry while `in_use` says it is.
    pub fn kept_while(mut self, in_use: fn(&V) -> bool) -> Self {
        self.in_use = Some(in_use);
        self
    }

    /// The same map, logging each eviction of one of these (`"run's actors"`).
    pub fn logging_evictions(mut self, of: &'static str) -> Self {
        self.evicts = Some(of);
        self
    }

    /// The same entries, forgotten `ttl` after they were last touched.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The entries, for several operations under one lock.
    pub fn lock(&self) -> Locked<'_, K, V> {
        Locked {
            entries: self.entries.lock().expect("store lock poisoned"),
            store: self,
        }
    }

    /// Forgets the expired entries (the periodic sweep calls it).
    pub fn prune(&self) {
        self.lock().prune();
    }

    /// Entries kept now, expired or not (the sweep drops the expired ones).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// The entry of `key` unless it has expired; not touched.
    pub fn get(&self, key: &K) -> Option<V>
    where
        V: Clone,
    {
        self.lock().get(key).cloned()
    }

    /// The entry of `key` unless it has expired, touched now.
    pub fn touch(&self, key: &K) -> Option<V>
    where
        V: Clone,
    {
        self.lock().touch(key).cloned()
    }

    /// Puts `value` in for `key`, touched now, counted against `owner`'s share; returns the
    /// value it replaces (a replaced entry keeps its owner).
    pub fn insert_for(
        &self,
        owner: Option<ClientId>,
        key: K,
        value: V,
    ) -> Result<Option<V>, Refused>
    where
        K: Clone + std::fmt::Debug,
    {
        self.lock().insert_for(owner, key, value)
    }

    pub fn remove(&self, key: &K) -> Option<V> {
        self.lock().remove(key)
    }

    fn expired(&self, kept: &Kept<V>, now: Instant) -> bool {
        now.saturating_duration_since(kept.touched) >= self.ttl && !self.busy(kept)
    }

    fn busy(&self, kept: &Kept<V>) -> bool {
        self.in_use.is_some_and(|in_use| in_use(&kept.value))
    }

    /// How long until the first of `entries` that is idle expires; [`BUSY_RETRY`] when every
    /// one is in use.
    fn retry_after<'e>(&self, entries: impl Iterator<Item = &'e Kept<V>>, now: Instant) -> Duration
    where
        V: 'e,
    {
        entries
            .filter(|kept| !self.busy(kept))
            .map(|kept| {
                self.ttl
                    .saturating_sub(now.saturating_duration_since(kept.touched))
            })
            .min()
            .unwrap_or(BUSY_RETRY)
    }
}

/// The entries of an [`Expiring`] map while its lock is held.
pub struct Locked<'a, K, V> {
    entries: MutexGuard<'a, HashMap<K, Kept<V>>>,
    store: &'a Expiring<K, V>,
}

impl<K: Eq + Hash, V> Locked<'_, K, V> {
    /// Forgets the expired entries.
    pub fn prune(&mut self) {
        let now = Instant::now();
        let store = self.store;
        self.entries.retain(|_, kept| !store.expired(kept, now));
    }

    /// Entries kept now, expired or not.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether as many entries as the store may keep are kept, expired or not.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.store.capacity
    }

    /// The entries that have not expired.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        let now = Instant::now();
        self.entries
            .values()
            .filter(move |kept| !self.store.expired(kept, now))
            .map(|kept| &kept.value)
    }

    /// Every entry kept, expired or not, to change; none touched (a trace hub trims its
    /// runs' logs through it).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.values_mut().map(|kept| &mut kept.value)
    }

    /// The entry of `key` unless it has expired; not touched.
    pub fn get(&self, key: &K) -> Option<&V> {
        let kept = self.entries.get(key)?;
        (!self.store.expired(kept, Instant::now())).then_some(&kept.value)
    }

    /// The entry of `key` unless it has expired, to change; not touched.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let now = Instant::now();
        let kept = self.entries.get_mut(key)?;
        (!self.store.expired(kept, now)).then_some(&mut kept.value)
    }

    /// The entry of `key` unless it has expired (then it is forgotten), touched now.
    pub fn touch(&mut self, key: &K) -> Option<&mut V> {
        let now = Instant::now();
        if self
            .entries
            .get(key)
            .is_some_and(|kept| self.store.expired(kept, now))
        {
            self.entries.remove(key);
        }
        let kept = self.entries.get_mut(key)?;
        kept.touched = now;
        Some(&mut kept.value)
    }

    /// The entry of `key`, touched now; `make` makes it, held by no client, when there is none
    /// (or it has expired), if there is room. The key is copied only then.
    pub fn get_or_insert_with(
        &mut self,
        key: &K,
        make: impl FnOnce() -> V,
    ) -> Result<&mut V, Refused>
    where
        K: Clone + std::fmt::Debug,
    {
        self.get_or_insert_for(None, key, make)
    }

    /// The entry of `key`, touched now; `make` makes it, counted against `owner`'s share, when
    /// there is none (or it has expired), if there is room. The key is copied only then.
    pub fn get_or_insert_for(
        &mut self,
        owner: Option<ClientId>,
        key: &K,
        make: impl FnOnce() -> V,
    ) -> Result<&mut V, Refused>
    where
        K: Clone + std::fmt::Debug,
    {
        self.get_or_insert_for_at(owner, key, Instant::now(), make)
    }

    /// [`Self::get_or_insert_for`], touched at `now` as the caller read it: for a store touched
    /// on every traced request, whose caller has read the clock already (each read is a
    /// `clock_gettime`).
    pub fn get_or_insert_for_at(
        &mut self,
        owner: Option<ClientId>,
        key: &K,
        now: Instant,
        make: impl FnOnce() -> V,
    ) -> Result<&mut V, Refused>
    where
        K: Clone + std::fmt::Debug,
    {
        // Looked up twice, as with `contains_key`: returning the first lookup's borrow and
        // inserting otherwise is beyond the borrow checker, and `entry` would copy the key.
        let live = match self.entries.get(key) {
            Some(kept) => !self.store.expired(kept, now),
            None => false,
        };
        if !live {
            self.entries.remove(key);
            self.make_room(owner, now)?;
            self.entries.insert(
                key.clone(),
                Kept {
                    value: make(),
                    touched: now,
                    owner,
                },
            );
        }
        let kept = self.entries.get_mut(key).expect("kept or inserted above");
        kept.touched = now;
        Ok(&mut kept.value)
    }

    /// Puts `value` in for `key`, touched now, counted against `owner`'s share, if there is
    /// room; returns the value it replaces (a replaced entry keeps its owner, so replacing is
    /// never refused).
    pub fn insert_for(
        &mut self,
        owner: Option<ClientId>,
        key: K,
        value: V,
    ) -> Result<Option<V>, Refused>
    where
        K: Clone + std::fmt::Debug,
    {
        let now = Instant::now();
        let live = self
            .entries
            .get(&key)
            .map(|kept| (kept.owner, self.store.expired(kept, now)));
        let owner = match live {
            Some((kept_by, false)) => kept_by,
            expired_or_none => {
                if expired_or_none.is_some() {
                    self.entries.remove(&key);
                }
                self.make_room(owner, now)?;
                owner
            }
        };
        let kept = Kept {
            value,
            touched: now,
            owner,
        };
        Ok(self.entries.insert(key, kept).map(|old| old.value))
    }

    /// Makes room for one more entry of `owner` as [`Self::insert_for`] would, or says why
    /// not: under the same lock, the insert that follows is not refused. For a store whose
    /// entry is made by something that must not start when refused (a task).
    pub fn make_room_for(&mut self, owner: Option<ClientId>) -> Result<(), Refused>
    where
        K: Clone + std::fmt::Debug,
    {
        self.make_room(owner, Instant::now())
    }

    /// The entries `owner` holds now that have not expired (for a share of something else
    /// than entries, such as bytes).
    pub fn held_by(&self, owner: ClientId) -> impl Iterator<Item = &V> {
        let now = Instant::now();
        self.entries
            .values()
            .filter(move |kept| kept.owner == Some(owner) && !self.store.expired(kept, now))
            .map(|kept| &kept.value)
    }

    /// How long until the first idle entry of `owner` (of anyone, for `None`) expires;
    /// [`BUSY_RETRY`] when every one is in use: the Retry-After of a refusal made by the
    /// store's user.
    pub fn retry_after(&self, owner: Option<ClientId>) -> Duration {
        let now = Instant::now();
        self.store.retry_after(
            self.entries
                .values()
                .filter(|kept| owner.is_none() || kept.owner == owner),
            now,
        )
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.entries.remove(key).map(|kept| kept.value)
    }

    /// Makes room for one more entry of `owner`: past its share, its own least recent idle
    /// entry goes if the store evicts (else it is refused); in a full store the expired
    /// entries go, then, if the store evicts, the least recent idle entry of the client holding
    /// the most. An entry in use is never evicted.
    fn make_room(&mut self, owner: Option<ClientId>, now: Instant) -> Result<(), Refused>
    where
        K: Clone + std::fmt::Debug,
    {
        let store = self.store;
        if let (Some(share), Some(owner)) = (store.share, owner) {
            let mine = || {
                self.entries
                    .values()
                    .filter(|kept| kept.owner == Some(owner) && !store.expired(kept, now))
            };
            if mine().count() >= share.per_client {
                if store.when_full == WhenFull::Refuse {
                    return Err(Refused::OverShare {
                        share,
                        retry_after: store.retry_after(mine(), now),
                    });
                }
                let Some(victim) = self.least_recent_idle(Some(owner)) else {
                    return Err(Refused::OverShare {
                        share,
                        retry_after: BUSY_RETRY,
                    });
                };
                self.evict(&victim, "its client's share is full");
                return Ok(());
            }
        }
        if !self.is_full() {
            return Ok(());
        }
        self.entries.retain(|_, kept| !store.expired(kept, now));
        if !self.is_full() {
            return Ok(());
        }
        let full = |retry_after| Refused::Full {
            capacity: store.capacity,
            what: store.share.map_or("entries", |s| s.what),
            retry_after,
        };
        if store.when_full == WhenFull::Refuse {
            return Err(full(store.retry_after(self.entries.values(), now)));
        }
        let mut held: HashMap<Option<ClientId>, usize> = HashMap::new();
        for kept in self.entries.values().filter(|kept| !store.busy(kept)) {
            *held.entry(kept.owner).or_default() += 1;
        }
        let biggest = held
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(owner, _)| owner);
        let Some(victim) = biggest.and_then(|owner| self.least_recent_idle(owner)) else {
            return Err(full(BUSY_RETRY));
        };
        self.evict(&victim, "the store is full");
        Ok(())
    }

    /// The key of `owner`'s least recently touched entry not in use.
    fn least_recent_idle(&self, owner: Option<ClientId>) -> Option<K>
    where
        K: Clone,
    {
        let store = self.store;
        self.entries
            .iter()
            .filter(|(_, kept)| kept.owner == owner && !store.busy(kept))
            .min_by_key(|(_, kept)| kept.touched)
            .map(|(key, _)| key.clone())
    }

    fn evict(&mut self, key: &K, why: &str)
    where
        K: std::fmt::Debug,
    {
        if let Some(what) = self.store.evicts {
            tracing::info!(?key, "evicting the least recently used {what}: {why}");
        }
        self.entries.remove(key);
    }
}

/// Things in progress (a proxy run, a job waiting for the blocking pool, a TLS handshake),
/// each counted against its client's share until its [`Slot`] is dropped: an [`Expiring`]
/// store whose entries never expire. Cheap to clone.
#[derive(Clone)]
pub struct Slots {
    /// One entry per slot taken, removed by its [`Slot`]'s drop.
    taken: Expiring<u64, ()>,
    /// The next slot's key.
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl Slots {
    /// At most `capacity` slots at once, `per_client` of them for one client (`what`, plural,
    /// in the refusal).
    pub fn new(capacity: usize, per_client: usize, what: &'static str) -> Slots {
        Slots {
            taken: Expiring::new(Duration::MAX)
                .bounded(capacity, WhenFull::Refuse)
                .shared(per_client, what)
                .kept_while(|_| true),
            next: Arc::default(),
        }
    }

    /// A slot for `client` (`None`: no share, only the capacity), until it is dropped.
    pub fn take(&self, client: Option<ClientId>) -> Result<Slot, Refused> {
        let key = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.taken.insert_for(client, key, ())?;
        Ok(Slot {
            taken: self.taken.clone(),
            key,
        })
    }

    /// Slots taken now.
    pub fn len(&self) -> usize {
        self.taken.len()
    }
}

/// One slot of [`Slots`]; dropping it (however the work ends) frees it.
pub struct Slot {
    taken: Expiring<u64, ()>,
    key: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.taken.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_millis(300);

    fn past_the_ttl() {
        std::thread::sleep(TTL + Duration::from_millis(100));
    }

    #[test]
    fn untouched_entries_expire_and_the_sweep_forgets_them() {
        let store: Expiring<u32, &str> = Expiring::new(TTL);
        store.insert_for(None, 1, "old").unwrap();
        past_the_ttl();
        store.insert_for(None, 2, "new").unwrap();
        assert_eq!(store.get(&1), None, "an expired entry is not served");
        assert_eq!(store.len(), 2, "but kept until the sweep");
        store.prune();
        assert_eq!(store.len(), 1);
        assert_eq!(store.touch(&2), Some("new"));
    }

    #[test]
    fn a_full_store_refuses_until_entries_expire() {
        let store: Expiring<u32, ()> = Expiring::new(TTL).bounded(2, WhenFull::Refuse);
        store.insert_for(None, 1, ()).unwrap();
        store.insert_for(None, 2, ()).unwrap();
        assert!(matches!(
            store.insert_for(None, 3, ()),
            Err(Refused::Full { capacity: 2, .. })
        ));
        assert_eq!(
            store.insert_for(None, 2, ()),
            Ok(Some(())),
            "a kept key is replaced"
        );
        past_the_ttl();
        assert_eq!(
            store.insert_for(None, 3, ()),
            Ok(None),
            "expired entries made room"
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn an_evicting_store_evicts_the_least_recently_touched_not_in_use() {
        let store: Expiring<u32, u32> = Expiring::new(Duration::from_secs(60))
            .bounded(2, WhenFull::EvictLeastRecent)
            .kept_while(|busy| *busy > 0);
        store.insert_for(None, 1, 0).unwrap();
        store.insert_for(None, 2, 1).unwrap();
        store.insert_for(None, 3, 0).unwrap();
        assert_eq!(store.get(&1), None, "1 was idle and oldest");
        assert_eq!(store.get(&2), Some(1), "2 is in use");
        if let Some(n) = store.lock().get_mut(&3) {
            *n = 1;
        }
        assert_eq!(
            store.insert_for(None, 4, 0).map_err(|r| r.retry_after()),
            Err(BUSY_RETRY),
            "everything is in use"
        );
    }

    #[test]
    fn entries_in_use_do_not_expire() {
        let store: Expiring<u32, u32> = Expiring::new(Duration::ZERO).kept_while(|n| *n > 0);
        store.insert_for(None, 1, 1).unwrap();
        store.insert_for(None, 2, 0).unwrap();
        store.prune();
        assert_eq!(store.len(), 1);
        let mut entries = store.lock();
        *entries.get_or_insert_with(&1, || 9).unwrap() = 0;
        assert_eq!(entries.get(&1), None, "expired once idle");
        assert_eq!(
            *entries.get_or_insert_with(&1, || 9).unwrap(),
            9,
            "made anew"
        );
    }

    fn client(n: u8) -> Option<ClientId> {
        Some(ClientId::of(std::net::IpAddr::from([10, 0, 0, n])))
    }

    #[test]
    fn a_client_past_its_share_is_refused_while_another_is_served() {
        let store: Expiring<u32, ()> = Expiring::new(Duration::from_secs(60))
            .bounded(10, WhenFull::Refuse)
            .shared(2, "things");
        store.insert_for(client(1), 1, ()).unwrap();
        store.insert_for(client(1), 2, ()).unwrap();
        let refused = store.insert_for(client(1), 3, ()).unwrap_err();
        assert!(matches!(refused, Refused::OverShare { share, .. } if share.per_client == 2));
        let retry = refused.retry_after();
        assert!(
            retry > Duration::from_secs(55) && retry <= Duration::from_secs(60),
            "retry when the oldest expires: {retry:?}"
        );
        let AppError::RateLimited { message, .. } = AppError::from(refused) else {
            panic!("a 429 with Retry-After")
        };
        assert!(
            message.contains("one client may hold 2 things at once; you hold 2"),
            "{message}"
        );
        assert_eq!(
            store.insert_for(client(2), 3, ()),
            Ok(None),
            "another client"
        );
        assert_eq!(
            store.insert_for(client(1), 2, ()),
            Ok(Some(())),
            "replacing"
        );
        assert_eq!(
            store.insert_for(None, 4, ()),
            Ok(None),
            "no client: no share"
        );
        store.remove(&1);
        assert_eq!(store.insert_for(client(1), 5, ()), Ok(None), "one ended");
    }

    #[test]
    fn an_evicting_store_evicts_only_the_over_share_clients_own_idle_entries() {
        let store: Expiring<u32, u32> = Expiring::new(Duration::from_secs(60))
            .bounded(10, WhenFull::EvictLeastRecent)
            .shared(2, "runs")
            .kept_while(|busy| *busy > 0);
        store.insert_for(client(2), 100, 0).unwrap();
        store.insert_for(client(1), 1, 0).unwrap();
        store.insert_for(client(1), 2, 1).unwrap();
        store.insert_for(client(1), 3, 0).unwrap();
        assert_eq!(store.get(&1), None, "its own oldest idle entry went");
        assert_eq!(store.get(&2), Some(1), "its entry in use stayed");
        assert_eq!(
            store.get(&100),
            Some(0),
            "another client's older entry stayed"
        );
        if let Some(n) = store.lock().get_mut(&3) {
            *n = 1;
        }
        let refused = store.insert_for(client(1), 4, 0).unwrap_err();
        assert!(matches!(refused, Refused::OverShare { .. }), "all in use");
        assert_eq!(refused.retry_after(), BUSY_RETRY);
    }

    #[test]
    fn a_full_evicting_store_takes_from_the_biggest_holder_never_what_is_in_use() {
        let store: Expiring<u32, u32> = Expiring::new(Duration::from_secs(60))
            .bounded(4, WhenFull::EvictLeastRecent)
            .shared(3, "runs")
            .kept_while(|busy| *busy > 0);
        store.insert_for(client(1), 1, 1).unwrap(); // watched, the oldest
        store.insert_for(client(2), 2, 0).unwrap();
        store.insert_for(client(2), 3, 0).unwrap();
        store.insert_for(client(3), 4, 0).unwrap();
        store.insert_for(client(4), 5, 0).unwrap();
        assert_eq!(store.len(), 4);
        assert_eq!(store.get(&1), Some(1), "in use: never evicted");
        assert_eq!(store.get(&2), None, "the biggest holder's oldest went");
        assert_eq!(store.get(&4), Some(0));
    }

    #[test]
    fn a_full_refusing_store_says_when_its_oldest_idle_entry_expires() {
        let store: Expiring<u32, ()> = Expiring::new(Duration::from_secs(30))
            .bounded(2, WhenFull::Refuse)
            .shared(2, "uploads");
        store.insert_for(client(1), 1, ()).unwrap();
        store.insert_for(client(2), 2, ()).unwrap();
        let refused = store.insert_for(client(3), 3, ()).unwrap_err();
        assert!(matches!(
            refused,
            Refused::Full {
                capacity: 2,
                what: "uploads",
                ..
            }
        ));
        assert_eq!(refused.retry_after(), Duration::from_secs(30));
    }

    #[test]
    fn slots_are_shared_and_freed_when_dropped() {
        let slots = Slots::new(3, 2, "handshakes");
        let mine = (
            slots.take(client(1)).unwrap(),
            slots.take(client(1)).unwrap(),
        );
        assert!(matches!(
            slots.take(client(1)),
            Err(Refused::OverShare { .. })
        ));
        let theirs = slots.take(client(2)).unwrap();
        assert!(matches!(slots.take(None), Err(Refused::Full { .. })));
        drop(mine);
        assert_eq!(slots.len(), 1);
        assert!(slots.take(client(1)).is_ok());
        drop(theirs);
        assert_eq!(slots.len(), 0);
    }
}

//! The one expiring map every store is made of: entries forgotten a while after they were last
//! touched (unless in use), at most so many of them, and what happens to one more when full.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

/// What a full store does with a new key, once what has expired is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Refuses it: the caller answers 429 until entries expire.
    Refuse,
    /// Forgets the least recently touched entry not in use; refuses when every entry is in use.
    EvictLeastRecent,
}

/// A new entry refused: the store is full of entries that have neither expired nor could be
/// evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// One entry and when it was last touched.
struct Kept<V> {
    value: V,
    touched: Instant,
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
        }
    }

    /// The same map, keeping at most `capacity` (at least one) entries.
    pub fn bounded(mut self, capacity: usize, when_full: WhenFull) -> Self {
        assert!(capacity > 0, "a store keeps at least one entry");
        self.capacity = capacity;
        self.when_full = when_full;
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

    /// Puts `value` in for `key`, touched now; returns the value it replaces.
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>, Full>
    where
        K: Clone + std::fmt::Debug,
    {
        self.lock().insert(key, value)
    }

    pub fn remove(&self, key: &K) -> Option<V> {
        self.lock().remove(key)
    }

    fn expired(&self, kept: &Kept<V>, now: Instant) -> bool {
        now.saturating_duration_since(kept.touched) >= self.ttl
            && !self.in_use.is_some_and(|in_use| in_use(&kept.value))
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

    /// The entry of `key`, touched now; `make` makes it when there is none (or it has expired),
    /// if there is room. The key is copied only then.
    pub fn get_or_insert_with(&mut self, key: &K, make: impl FnOnce() -> V) -> Result<&mut V, Full>
    where
        K: Clone + std::fmt::Debug,
    {
        let now = Instant::now();
        // Looked up twice, as with `contains_key`: returning the first lookup's borrow and
        // inserting otherwise is beyond the borrow checker, and `entry` would copy the key.
        let live = match self.entries.get(key) {
            Some(kept) => !self.store.expired(kept, now),
            None => false,
        };
        if !live {
            if self.entries.remove(key).is_none() {
                self.make_room(now)?;
            }
            self.entries.insert(
                key.clone(),
                Kept {
                    value: make(),
                    touched: now,
                },
            );
        }
        let kept = self.entries.get_mut(key).expect("kept or inserted above");
        kept.touched = now;
        Ok(&mut kept.value)
    }

    /// Puts `value` in for `key`, touched now, if there is room; returns the value it replaces.
    pub fn insert(&mut self, key: K, value: V) -> Result<Option<V>, Full>
    where
        K: Clone + std::fmt::Debug,
    {
        let now = Instant::now();
        if !self.entries.contains_key(&key) {
            self.make_room(now)?;
        }
        let kept = Kept {
            value,
            touched: now,
        };
        Ok(self.entries.insert(key, kept).map(|old| old.value))
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.entries.remove(key).map(|kept| kept.value)
    }

    /// Makes room for one more entry when the store is full: the expired ones go, then, if the
    /// store evicts, the least recently touched one not in use.
    fn make_room(&mut self, now: Instant) -> Result<(), Full>
    where
        K: Clone + std::fmt::Debug,
    {
        if !self.is_full() {
            return Ok(());
        }
        let store = self.store;
        self.entries.retain(|_, kept| !store.expired(kept, now));
        if !self.is_full() {
            return Ok(());
        }
        if store.when_full == WhenFull::Refuse {
            return Err(Full);
        }
        let oldest = self
            .entries
            .iter()
            .filter(|(_, kept)| !store.in_use.is_some_and(|in_use| in_use(&kept.value)))
            .min_by_key(|(_, kept)| kept.touched)
            .map(|(key, _)| key.clone())
            .ok_or(Full)?;
        if let Some(what) = store.evicts {
            tracing::info!(key = ?oldest, "evicting the least recently used {what}");
        }
        self.entries.remove(&oldest);
        Ok(())
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
        store.insert(1, "old").unwrap();
        past_the_ttl();
        store.insert(2, "new").unwrap();
        assert_eq!(store.get(&1), None, "an expired entry is not served");
        assert_eq!(store.len(), 2, "but kept until the sweep");
        store.prune();
        assert_eq!(store.len(), 1);
        assert_eq!(store.touch(&2), Some("new"));
    }

    #[test]
    fn a_full_store_refuses_until_entries_expire() {
        let store: Expiring<u32, ()> = Expiring::new(TTL).bounded(2, WhenFull::Refuse);
        store.insert(1, ()).unwrap();
        store.insert(2, ()).unwrap();
        assert_eq!(store.insert(3, ()), Err(Full));
        assert_eq!(store.insert(2, ()), Ok(Some(())), "a kept key is replaced");
        past_the_ttl();
        assert_eq!(store.insert(3, ()), Ok(None), "expired entries made room");
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn an_evicting_store_evicts_the_least_recently_touched_not_in_use() {
        let store: Expiring<u32, u32> = Expiring::new(Duration::from_secs(60))
            .bounded(2, WhenFull::EvictLeastRecent)
            .kept_while(|busy| *busy > 0);
        store.insert(1, 0).unwrap();
        store.insert(2, 1).unwrap();
        store.insert(3, 0).unwrap();
        assert_eq!(store.get(&1), None, "1 was idle and oldest");
        assert_eq!(store.get(&2), Some(1), "2 is in use");
        if let Some(n) = store.lock().get_mut(&3) {
            *n = 1;
        }
        assert_eq!(store.insert(4, 0), Err(Full), "everything is in use");
    }

    #[test]
    fn entries_in_use_do_not_expire() {
        let store: Expiring<u32, u32> = Expiring::new(Duration::ZERO).kept_while(|n| *n > 0);
        store.insert(1, 1).unwrap();
        store.insert(2, 0).unwrap();
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
}

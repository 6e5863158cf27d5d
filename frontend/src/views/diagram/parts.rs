//! The store of drawn parts: each drawn arrow or bar behind a signal of its own, set only when
//! that part's view changed, so a frame redraws what moved, not every part in the window.

use std::collections::HashMap;

use leptos::prelude::*;

/// The drawn parts of one kind (arrows, bars), each behind a signal of its own by key: a frame
/// sets only the signals whose view changed, and a part's signal goes when the part is no longer
/// drawn.
pub(super) struct Views<T: Send + Sync + 'static>(StoredValue<HashMap<String, ArcRwSignal<T>>>);

impl<T: Send + Sync + 'static> Clone for Views<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for Views<T> {}

impl<T: Clone + PartialEq + Send + Sync + 'static> Views<T> {
    pub(super) fn new() -> Self {
        Views(StoredValue::new(HashMap::new()))
    }

    /// The signal of the part `key` drawn by the calling view, made from `now` if it has none
    /// yet; it is dropped with that view.
    pub(super) fn signal(self, key: &str, now: impl FnOnce() -> T) -> ArcRwSignal<T> {
        let signal = self
            .0
            .with_value(|v| v.get(key).cloned())
            .unwrap_or_else(|| {
                let signal = ArcRwSignal::new(now());
                self.0.update_value(|v| {
                    v.insert(key.to_owned(), signal.clone());
                });
                signal
            });
        let key = key.to_owned();
        on_cleanup(move || {
            self.0.try_update_value(|v| v.remove(&key));
        });
        signal
    }

    /// Of `items`, those whose part has a signal showing other than its view now (`now`), with
    /// that view: for [`set_all`], outside the store's lock.
    pub(super) fn changed<'a, I: 'a>(
        self,
        items: impl IntoIterator<Item = &'a I>,
        key: impl Fn(&'a I) -> &'a str,
        now: impl Fn(&'a I) -> Option<T>,
    ) -> Vec<(ArcRwSignal<T>, T)> {
        self.0
            .try_with_value(|views| {
                items
                    .into_iter()
                    .filter_map(|item| {
                        let signal = views.get(key(item))?;
                        let now = now(item)?;
                        signal
                            .with_untracked(|was| *was != now)
                            .then(|| (signal.clone(), now))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Sets each signal to its new view.
pub(super) fn set_all<T: Send + Sync + 'static>(changed: Vec<(ArcRwSignal<T>, T)>) {
    for (signal, now) in changed {
        signal.set(now);
    }
}

/// The item at `i` in `items` if it has `key`, otherwise the one with `key` anywhere.
pub(super) fn at_key<'a, T>(
    items: &'a [T],
    i: usize,
    key: &str,
    key_of: impl Fn(&T) -> &String,
) -> Option<&'a T> {
    items
        .get(i)
        .filter(|x| key_of(x) == key)
        .or_else(|| items.iter().find(|x| key_of(x) == key))
}

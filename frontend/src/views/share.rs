//! Shareable settings: a demo's parameters live in the page's query string, so a copied link
//! opens the same demo with the same settings.

use leptos::prelude::*;

fn search_params() -> Option<web_sys::UrlSearchParams> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search).ok()
}

/// The whole number `text` says, or `default` when it says none, held to `range`.
pub fn count_in(text: &str, default: usize, range: std::ops::RangeInclusive<usize>) -> usize {
    text.trim()
        .parse()
        .unwrap_or(default)
        .clamp(*range.start(), *range.end())
}

/// How many of something a run starts ([`count_in`] of the parameter `value`). The parameter is
/// set to the number used, so the field and a copied link say what ran (asked for 50 chat
/// clients, the page starts 6 and the field says 6).
pub fn count_param(
    value: RwSignal<String>,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> usize {
    let n = value.with_untracked(|v| count_in(v, default, range));
    if value.with_untracked(|v| v.trim() != n.to_string()) {
        value.set(n.to_string());
    }
    n
}

/// A parameter backed by the URL's `?name=`: starts from it (or `default`), and every change is
/// written back with `history.replaceState` (no reload, no history entry per keystroke).
pub fn url_param(name: &'static str, default: &str) -> RwSignal<String> {
    let initial = search_params()
        .and_then(|p| p.get(name))
        .unwrap_or_else(|| default.to_owned());
    let value = RwSignal::new(initial);
    Effect::new(move |_| {
        let v = value.get();
        let Some(window) = web_sys::window() else {
            return;
        };
        let Some(params) = search_params() else {
            return;
        };
        params.set(name, &v);
        let path = window.location().pathname().unwrap_or_default();
        let url = format!("{path}?{}", String::from(params.to_string()));
        if let Ok(history) = window.history() {
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
        }
    });
    value
}

/// "Copy link": puts this page's URL, settings included, on the clipboard.
#[component]
pub fn CopyLink() -> impl IntoView {
    let copied = RwSignal::new(false);
    let copy = move |_| {
        let Some(window) = web_sys::window() else {
            return;
        };
        let href = window.location().href().unwrap_or_default();
        let _ = window.navigator().clipboard().write_text(&href);
        copied.set(true);
    };
    view! {
        <button type="button" data-testid="copy-link" on:click=copy>
            {move || if copied.get() { "Link copied" } else { "Copy link" }}
        </button>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_read_whole_and_held_to_its_range() {
        assert_eq!(count_in(" 4 ", 2, 0..=6), 4);
        assert_eq!(count_in("50", 2, 0..=6), 6);
        assert_eq!(count_in("0", 4, 1..=12), 1);
        assert_eq!(count_in("-3", 4, 1..=12), 4, "not a count: the default");
        assert_eq!(count_in("2.5", 3, 0..=8), 3);
        assert_eq!(count_in("", 3, 0..=8), 3);
    }
}

//! Shareable settings: a demo's parameters live in the page's query string, so a copied link
//! opens the same demo with the same settings.

use leptos::prelude::*;

fn search_params() -> Option<web_sys::UrlSearchParams> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search).ok()
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

//! Network conditions per run: the "Link" control every run has (a preset the server shapes the
//! run to, kept in the page's `?link=` so a copied link carries it), and the line that says,
//! over a diagram drawn on a shaped link, that the server added the delay.

use leptos::prelude::*;
use protocol::{LINK_PARAM, link::Link};

use super::share::url_param;

/// What the server does with a link, said plainly.
const HOW_SHAPED: &str = "The server adds this delay itself: it holds each request of the run \
    until the link would have carried it before its handler sees it, and each response, frame \
    and event before writing it, at the link's rate. Setting up a connection is not delayed.";

/// The link control: one select of the presets, bound to `?link=`; the run reads it when it
/// starts.
#[component]
pub fn LinkControl() -> impl IntoView {
    let name = url_param(LINK_PARAM, Link::Local.name());
    let chosen = move || Link::from_name(&name.get()).unwrap_or_default();
    view! {
        <label class="link-control">
            "Link"
            <select data-testid="param-link" prop:value=move || chosen().name()
                on:change=move |ev| name.set(event_target_value(&ev))>
                {Link::ALL.map(|link| view! { <option value=link.name()>{link.label()}</option> }).collect_view()}
            </select>
        </label>
        <p class="link-note" data-testid="link-note" hidden=move || chosen() == Link::Local>
            <strong>{move || chosen().describe()}</strong>". "{HOW_SHAPED}
        </p>
    }
}

/// Over a run shaped to a link (as it ran or was saved): which link, and that the arrows are
/// drawn to the time the server held its bytes for. Nothing for a local run.
#[component]
pub fn ShapedNote(#[prop(into)] link: Signal<Link>) -> impl IntoView {
    move || {
        let link = link.get();
        (link != Link::Local).then(|| {
            view! {
                <p class="shaped" data-testid="shaped" data-link=link.name()>
                    <strong>"Shaped by the server to " {link.describe()}</strong>
                    ". Each arrow is drawn to the time its bytes took on that link."
                </p>
            }
        })
    }
}

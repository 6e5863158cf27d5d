//! The Patternscope page: pick a pattern, press Run, watch real traffic drawn as a sequence
//! diagram.
//!
//! Every demo records what the browser sends and receives ([`recording::recorder`], through
//! [`recording::api`]), receives what the server saw over one trace WebSocket
//! ([`recording::trace_socket`]), merges both onto the browser's clock ([`model::merge`]), lays
//! the trace out ([`model::layout`], pure) and draws it ([`views::diagram`]).
//!
//! # Layout
//! Four layers, each a folder; imports go down only: a demo may use the views, the recording and
//! the model; a view the recording and the model; the recording the model; the model nothing.
//! - [`model`]: what the page knows and works out; pure, unit-tested natively.
//!   - [`model::catalog`]: every pattern, its summary and explanation; which are built.
//!   - [`model::merge`]: pairs both observers' records and maps server time onto the browser's
//!     clock.
//!   - [`model::layout`]: trace → lifelines, arrows, activation bars, time axis.
//!   - [`model::window`]: which rows of a long diagram are near enough to the view to be drawn.
//!   - [`model::labels`]: where each arrow's label sits without covering another.
//!   - [`model::export`]: a run as Mermaid text, standalone SVG or JSON, and JSON back.
//!   - [`model::metrics`]: what a run cost (requests, bytes, latency, connections).
//!   - [`model::format`]: sizes, durations and an arrow's short text as the page writes them.
//!   - [`model::phases`]: the names of the phases recorded for each fetch.
//! - [`recording`]: the page's traffic, each exchange recorded.
//!   - [`recording::api`]: every network call a demo makes, each one recorded.
//!   - [`recording::recorder`]: the run, the browser's records and the merged trace.
//!   - [`recording::trace_socket`]: the page's trace WebSocket.
//!   - [`recording::event_stream`]: a recorded EventSource (events, drops, reconnections).
//!   - [`recording::socket_stream`]: a recorded WebSocket (upgrade, frames each way, close).
//!   - [`recording::waiting`]: the four client loops that learn of a job's progress (poll, long
//!     poll, SSE, WebSocket), and their stoppable sleep.
//! - [`views`]: what the reader sees and works.
//!   - [`views::demo_frame`]: the frame every demo page shares, with its metric cards.
//!   - [`views::trace_view`]: toolbar, playback, diagram, inspector and waterfall for one run.
//!   - [`views::diagram`]: the animated SVG sequence diagram, one file per concern (frames,
//!     scroll box, follow, keyboard, the parts drawn).
//!   - [`views::playback`]: pause, step, scrub and replay a trace.
//!   - [`views::inspector`]: the clicked exchange in HTTP anatomy.
//!   - [`views::waterfall`]: per-request timing from Resource Timing and Server-Timing.
//!   - [`views::job_controls`]: the job parameters and progress bar the waiting-for-results demos
//!     share.
//!   - [`views::share`]: parameters kept in the URL, and a copy-link control.
//! - [`demos`]: one module per demo.
//!
//! This file keeps the app and its router; `main.rs` only mounts it.
#![deny(unsafe_code)] // allowed only in `#[lazy]` split points' modules, for their generated code

mod demos;
mod model;
mod recording;
mod views;

use leptos::prelude::*;
use leptos_router::{
    components::{Route, Router, Routes},
    hooks::use_params_map,
    path,
};

use crate::model::catalog::{self, PATTERNS};

#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <nav class="top">
                <a href="/" class="brand">"Patternscope"</a>
                <span class="tagline">"backend communication patterns, live"</span>
            </nav>
            <main>
                <Routes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("/") view=Index/>
                    <Route path=path!("/demo/:slug") view=DemoRoute/>
                    <Route path=path!("/har") view=HarRoute/>
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn Index() -> impl IntoView {
    view! {
        <section class="index">
            <h1>"Watch backend patterns happen"</h1>
            <p class="lede">
                "Pick a pattern and press Run. Your browser makes real requests to this server; every exchange, \
                 and what happens inside the server, is drawn as a sequence diagram in real time. Click an arrow \
                 to see its headers and body, and find the same request in your browser's Network tab."
            </p>
            <ul class="patterns" data-testid="pattern-list">
                {PATTERNS
                    .iter()
                    .map(|p| {
                        view! {
                            <li class="pattern" class:unbuilt=!p.built data-slug=p.slug>
                                <a href=format!("/demo/{}", p.slug)>
                                    <span class="title">{p.title}</span>
                                    {(!p.built).then(|| view! { <span class="badge">"not built yet"</span> })}
                                </a>
                                <p>{p.summary}</p>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
            <p class="har-link">
                "Your own app's traffic: "
                <a href="/har" data-testid="har-link">"draw a HAR file"</a>
                " saved from any site's Network tab, with the same diagram, waterfall and inspector."
            </p>
        </section>
    }
}

#[component]
fn DemoRoute() -> impl IntoView {
    let params = use_params_map();
    let page = move || {
        let slug = params.with(|p| p.get("slug").unwrap_or_default());
        Suspend::new(async move {
            match demos::chunks::demo_page(&slug).await {
                Some(page) => page,
                None => match catalog::find(&slug) {
                    Some(p) => view! { <NotBuilt pattern=p/> }.into_any(),
                    None => view! { <NotFound/> }.into_any(),
                },
            }
        })
    };
    view! { <Suspense fallback=Loading>{page}</Suspense> }
}

#[component]
fn HarRoute() -> impl IntoView {
    view! { <Suspense fallback=Loading>{Suspend::new(demos::chunks::har_page())}</Suspense> }
}

/// Shown while a page's WebAssembly chunk is on its way (a first visit to that page only).
#[component]
fn Loading() -> impl IntoView {
    view! { <p class="loading" data-testid="page-loading">"Loading this page…"</p> }
}

#[component]
fn NotBuilt(pattern: &'static catalog::Pattern) -> impl IntoView {
    view! {
        <article class="demo not-built" data-testid="not-built">
            <a class="back" href="/">"← All patterns"</a>
            <h1>{pattern.title}</h1>
            <p class="summary">{pattern.summary}</p>
            <p class="badge big">"Not built yet"</p>
            <p>"This demo does not exist yet, so there is nothing to run here. No canned animation stands in for it."</p>
        </article>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <article class="demo">
            <h1>"No such page"</h1>
            <p><a href="/">"See every pattern"</a></p>
        </article>
    }
}

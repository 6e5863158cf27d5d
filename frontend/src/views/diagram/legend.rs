//! The diagram's legend.

use leptos::prelude::*;

/// What the line styles and colours mean (kind is shown by line style, not colour alone).
#[component]
pub(super) fn Legend() -> impl IntoView {
    view! {
        <div class="legend" aria-label="Legend">
            <span><span class="dash"></span>"request"</span>
            <span><span class="dash response"></span>"response"</span>
            <span><span class="dash error"></span>"error (4xx/5xx)"</span>
            // Colours come from classes, not `style` attributes: the Content-Security-Policy
            // allows no inline style (see backend/src/security.rs).
            <span><span class="swatch busy"></span>"server busy"</span>
            <span><span class="swatch phase-parse"></span>"parse"</span>
            <span><span class="swatch phase-process"></span>"process"</span>
            <span><span class="swatch phase-serialize"></span>"serialize"</span>
            <span><span class="swatch queued"></span>"queued"</span>
            <span><span class="swatch waiting"></span>"browser waiting"</span>
            <span>"Time runs down, to scale; gaps under one row are stretched so labels stay readable, long quiet stretches folded (torn band)."</span>
        </div>
    }
}

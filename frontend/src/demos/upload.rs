//! Whole vs chunked upload. The page takes a picked file, or generates an image (a BMP of the
//! chosen size), hashes it (SHA-256, in the page), and sends it either in one request or as
//! chunks, each `PUT` at the offset the server acknowledged. "Interrupt" aborts the chunk in
//! flight; "Resume" asks the server how much it holds and carries on from there. The server
//! hashes what it assembled and says whether it matches.

use leptos::{prelude::*, task::spawn_local};
use protocol::{
    trace::{Actor, Kind},
    upload::{NewUpload, UploadId, UploadState, sha256_hex},
};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, HtmlInputElement};

use crate::{
    model::{catalog, format::human_bytes},
    recording::{
        api,
        recorder::{Recorder, use_recorder},
        waiting::pause_while,
    },
    views::{demo_frame::DemoFrame, job_controls::NumberInput, share::url_param},
};

/// A 24-bit BMP of about `bytes` bytes (256 pixels wide, a colour gradient), and its name.
pub fn generate_bmp(bytes: usize) -> (String, Vec<u8>) {
    const WIDTH: usize = 256;
    const ROW: usize = WIDTH * 3; // already a multiple of 4: no row padding
    const HEADER: usize = 54;
    let height = (bytes.saturating_sub(HEADER) / ROW).max(1);
    let size = HEADER + ROW * height;
    let mut out = Vec::with_capacity(size);
    let le32 = |v: usize| (v as u32).to_le_bytes();
    out.extend_from_slice(b"BM");
    out.extend_from_slice(&le32(size));
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&le32(HEADER));
    out.extend_from_slice(&le32(40));
    out.extend_from_slice(&le32(WIDTH));
    out.extend_from_slice(&le32(height));
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&24u16.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&le32(ROW * height));
    out.extend_from_slice(&le32(2835));
    out.extend_from_slice(&le32(2835));
    out.extend_from_slice(&[0; 8]);
    for y in 0..height {
        for x in 0..WIDTH {
            out.extend_from_slice(&[(x ^ y) as u8, (y % 256) as u8, x as u8]);
        }
    }
    (format!("generated-{WIDTH}x{height}.bmp"), out)
}

/// The file being uploaded and where the chunked upload stands.
struct Upload {
    name: String,
    bytes: Vec<u8>,
    sha256: String,
    id: Option<UploadId>,
}

#[component]
pub fn UploadDemo() -> impl IntoView {
    let recorder = use_recorder();
    let source = url_param("source", "generate");
    let size_kb = url_param("size_kb", "512");
    let mode = url_param("mode", "chunked");
    let chunk_kb = url_param("chunk_kb", "64");
    let delay_ms = url_param("delay_ms", "150");
    let status = RwSignal::new(String::new());
    let progress = RwSignal::new((0u64, 0u64));
    let interrupted = RwSignal::new(false);
    let running = recorder.running();
    let picked: StoredValue<Option<(String, Vec<u8>)>, LocalStorage> = StoredValue::new_local(None);
    let upload: StoredValue<Option<Upload>, LocalStorage> = StoredValue::new_local(None);
    let abort: StoredValue<Option<AbortController>, LocalStorage> = StoredValue::new_local(None);

    let pick = move |ev: leptos::ev::Event| {
        let Some(file) = ev
            .target()
            .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
            .and_then(|input| input.files())
            .and_then(|files| files.get(0))
        else {
            return;
        };
        spawn_local(async move {
            let Ok(buffer) = JsFuture::from(file.array_buffer()).await else {
                status.set("Could not read that file.".into());
                return;
            };
            let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
            status.set(format!(
                "Picked {} ({}).",
                file.name(),
                human_bytes(bytes.len() as u64)
            ));
            picked.set_value(Some((file.name(), bytes)));
            source.set("file".into());
        });
    };

    // An unfinished upload the page leaves behind is forgotten at once, not at its expiry.
    let unfinished: std::sync::Arc<std::sync::Mutex<Option<(UploadId, protocol::trace::RunId)>>> =
        Default::default();
    let leaving = unfinished.clone();
    on_cleanup(move || {
        if let Some((id, run)) = leaving.lock().expect("upload lock poisoned").take() {
            api::release_quietly(format!("/api/uploads/{}", id.0), run);
        }
    });
    let abort_in_flight = move || abort.with_value(|a| a.iter().for_each(AbortController::abort));
    let on_stop = Callback::new(move |_| {
        abort_in_flight();
        interrupted.set(false);
        // The server may forget an unfinished upload now rather than at its expiry.
        if let Some(id) = upload.with_value(|u| u.as_ref().and_then(|u| u.id.clone())) {
            spawn_local(async move {
                let _ = api::forget_upload(recorder, &id).await;
                recorder.finish_run();
            });
            upload.set_value(None);
        } else {
            recorder.finish_run();
        }
    });

    let on_run = Callback::new(move |_| {
        let file = if source.get_untracked() == "file" {
            picked.with_value(Clone::clone)
        } else {
            let kb: usize = size_kb.get_untracked().trim().parse().unwrap_or(512);
            Some(generate_bmp(kb.saturating_mul(1024)))
        };
        let Some((name, bytes)) = file else {
            status.set("Pick a file first, or choose to generate an image.".into());
            return;
        };
        recorder.start_run();
        interrupted.set(false);
        let sha256 = sha256_hex(&bytes);
        recorder.note(Kind::Work, format!("SHA-256 of {name}: {sha256}"));
        progress.set((0, bytes.len() as u64));
        let whole = mode.get_untracked() == "whole";
        upload.set_value(Some(Upload {
            name,
            bytes,
            sha256,
            id: None,
        }));
        let unfinished = unfinished.clone();
        spawn_local(async move {
            if whole {
                send_whole(recorder, upload, abort, progress, status).await;
                recorder.finish_run();
                return;
            }
            let announced = upload.with_value(|u| {
                u.as_ref().map(|u| NewUpload {
                    name: u.name.clone(),
                    size: u.bytes.len() as u64,
                    sha256: u.sha256.clone(),
                })
            });
            let Some(new) = announced else { return };
            match api::announce_upload(recorder, &new).await {
                Ok(state) => {
                    upload.update_value(|u| {
                        if let Some(u) = u {
                            u.id = state.id.clone();
                        }
                    });
                    if let (Some(id), Some(run)) = (state.id.clone(), recorder.run_id()) {
                        *unfinished.lock().expect("upload lock poisoned") = Some((id, run));
                    }
                    let chunk = chunk_bytes(&chunk_kb.get_untracked());
                    let delay = delay_ms.get_untracked().trim().parse().unwrap_or(150);
                    let steps = ChunkLoop {
                        recorder,
                        upload,
                        abort,
                        progress,
                        status,
                        interrupted,
                    };
                    steps.send_from(0, chunk, delay).await;
                }
                Err(e) => {
                    status.set(format!("The server refused the upload: {e}"));
                    recorder.finish_run();
                }
            }
        });
    });

    let interrupt = move |_| {
        interrupted.set(true);
        abort_in_flight();
    };
    let resume = move |_| {
        let Some(id) = upload.with_value(|u| u.as_ref().and_then(|u| u.id.clone())) else {
            return;
        };
        interrupted.set(false);
        let chunk = chunk_bytes(&chunk_kb.get_untracked());
        let delay = delay_ms.get_untracked().trim().parse().unwrap_or(150);
        spawn_local(async move {
            match api::upload_state(recorder, &id).await {
                Ok(state) => {
                    status.set(format!(
                        "The server holds {} of {}: resuming from byte {}.",
                        human_bytes(state.received),
                        human_bytes(state.size),
                        state.received
                    ));
                    progress.set((state.received, state.size));
                    let steps = ChunkLoop {
                        recorder,
                        upload,
                        abort,
                        progress,
                        status,
                        interrupted,
                    };
                    steps.send_from(state.received, chunk, delay).await;
                }
                Err(e) => {
                    status.set(format!("Cannot resume: {e}"));
                    recorder.finish_run();
                }
            }
        });
    };

    let chunked = move || mode.get() == "chunked";
    view! {
        <DemoFrame
            pattern=catalog::find("upload").expect("catalogued")
            recorder=recorder
            actors=["browser", "server"].map(Actor::new).to_vec()
            on_run=on_run
            on_stop=on_stop
            network_path="/api/uploads"
            status=status
        >
            <label>
                "File"
                <select data-testid="param-source" prop:value=move || source.get()
                    on:change=move |ev| source.set(event_target_value(&ev))>
                    <option value="generate">"generate an image"</option>
                    <option value="file">"a file I pick"</option>
                </select>
            </label>
            <Show when=move || source.get() == "generate">
                <NumberInput label="Image size (KiB)" testid="param-size-kb" value=size_kb/>
            </Show>
            <Show when=move || source.get() == "file">
                <label>
                    "Pick a file"
                    <input type="file" data-testid="param-file" on:change=pick/>
                </label>
            </Show>
            <label>
                "Upload"
                <select data-testid="param-mode" prop:value=move || mode.get()
                    on:change=move |ev| mode.set(event_target_value(&ev))>
                    <option value="chunked">"in chunks, each acknowledged"</option>
                    <option value="whole">"whole, in one request"</option>
                </select>
            </label>
            <Show when=chunked>
                <NumberInput label="Chunk size (KiB)" testid="param-chunk-kb" value=chunk_kb/>
                <NumberInput label="Pause between chunks (ms)" testid="param-delay-ms" value=delay_ms/>
            </Show>
            <div class="upload-progress">
                <progress data-testid="upload-progress" max=move || progress.get().1.max(1).to_string()
                    value=move || progress.get().0.to_string()></progress>
                <span>{move || {
                    let (done, size) = progress.get();
                    if size == 0 { String::new() } else { format!("{} / {}", human_bytes(done), human_bytes(size)) }
                }}</span>
                <button type="button" data-testid="interrupt" disabled=move || !running.get() || interrupted.get() || !chunked()
                    on:click=interrupt>"Interrupt"</button>
                <button type="button" data-testid="resume" disabled=move || !interrupted.get() on:click=resume>"Resume"</button>
            </div>
        </DemoFrame>
    }
}

/// Chunk size in bytes from the KiB field (the server judges out-of-range sizes).
fn chunk_bytes(kb: &str) -> usize {
    kb.trim().parse::<usize>().unwrap_or(64).max(1) * 1024
}

/// What the chunk loop needs from the page.
#[derive(Clone, Copy)]
struct ChunkLoop {
    recorder: Recorder,
    upload: StoredValue<Option<Upload>, LocalStorage>,
    abort: StoredValue<Option<AbortController>, LocalStorage>,
    progress: RwSignal<(u64, u64)>,
    status: RwSignal<String>,
    interrupted: RwSignal<bool>,
}

impl ChunkLoop {
    /// Sends chunks from `offset` until the file is in, the run stops or it is interrupted.
    async fn send_from(self, mut offset: u64, chunk: usize, delay_ms: u32) {
        let running = self.recorder.running();
        loop {
            let next = self.upload.with_value(|u| {
                u.as_ref().and_then(|u| {
                    let start = offset as usize;
                    (start < u.bytes.len()).then(|| {
                        let end = (start + chunk).min(u.bytes.len());
                        (u.id.clone(), u.bytes[start..end].to_vec())
                    })
                })
            });
            let Some((Some(id), piece)) = next else {
                return;
            };
            let controller = AbortController::new().ok();
            self.abort.set_value(controller.clone());
            let signal = controller.as_ref().map(AbortController::signal);
            match api::upload_chunk(self.recorder, &id, offset, piece, signal.as_ref()).await {
                Ok(state) => {
                    offset = state.received;
                    self.progress.set((state.received, state.size));
                    if state.complete() {
                        self.status.set(verdict(&state));
                        self.recorder.finish_run();
                        return;
                    }
                    self.status.set(format!(
                        "Acknowledged up to byte {} of {}.",
                        state.received, state.size
                    ));
                }
                Err(_) if self.interrupted.get_untracked() => {
                    self.status.set(format!(
                        "Interrupted: the chunk at byte {offset} was cut off. Press Resume: the page asks the server where it stands."
                    ));
                    return;
                }
                Err(e) => {
                    self.status.set(format!("A chunk was refused: {e}"));
                    self.recorder.finish_run();
                    return;
                }
            }
            if !pause_while(running, delay_ms).await {
                return;
            }
            if self.interrupted.get_untracked() {
                self.status.set(format!(
                    "Interrupted between chunks: the server acknowledged {offset} bytes. Press Resume: the page asks the server where it stands."
                ));
                return;
            }
        }
    }
}

/// The whole file in one request.
async fn send_whole(
    recorder: Recorder,
    upload: StoredValue<Option<Upload>, LocalStorage>,
    abort: StoredValue<Option<AbortController>, LocalStorage>,
    progress: RwSignal<(u64, u64)>,
    status: RwSignal<String>,
) {
    let Some((name, sha, bytes)) = upload.with_value(|u| {
        u.as_ref()
            .map(|u| (u.name.clone(), u.sha256.clone(), u.bytes.clone()))
    }) else {
        return;
    };
    let controller = AbortController::new().ok();
    abort.set_value(controller.clone());
    let signal = controller.as_ref().map(AbortController::signal);
    match api::upload_whole(recorder, &name, &sha, bytes, signal.as_ref()).await {
        Ok(state) => {
            progress.set((state.received, state.size));
            status.set(verdict(&state));
        }
        Err(e) => status.set(format!("The upload failed: {e}")),
    }
}

/// The server's word on the assembled file.
fn verdict(state: &UploadState) -> String {
    match state.sha256_matches {
        Some(true) => format!(
            "Done: the server assembled {} and its SHA-256 matches the page's.",
            human_bytes(state.size)
        ),
        Some(false) => format!(
            "The server assembled {} but its SHA-256 ({}…) does NOT match the page's.",
            human_bytes(state.size),
            state
                .sha256
                .as_deref()
                .unwrap_or("")
                .get(..16)
                .unwrap_or("")
        ),
        None => "The server has not got every byte yet.".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_bmp_has_a_valid_header_and_about_the_asked_size() {
        let (name, bytes) = generate_bmp(100_000);
        assert!(name.starts_with("generated-256x"));
        assert_eq!(&bytes[..2], b"BM");
        let size = u32::from_le_bytes(bytes[2..6].try_into().unwrap()) as usize;
        assert_eq!(size, bytes.len());
        assert!(bytes.len() <= 100_000 && bytes.len() > 100_000 - 768);
        assert_eq!(u32::from_le_bytes(bytes[10..14].try_into().unwrap()), 54);
    }
}

//! The page's one trace WebSocket: receives the server's half of the watched run's trace.
//! Reconnects after a drop (waiting longer after each failed try, up to [`MAX_RETRY_MS`]) and
//! watches the current run again after the last message the page holds (of the server's log
//! the page holds it of); closes with the component. The server pings it, so an idle proxy does not cut it.

use std::{cell::Cell, rc::Rc};

use leptos::prelude::*;
use protocol::{
    TRACE_SOCKET_PATH,
    trace::{RunId, TraceClientMsg, TraceServerMsg},
};
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::{MessageEvent, WebSocket};

/// The wait before the first reconnection; doubled after each try that does not open.
const FIRST_RETRY_MS: u32 = 1_000;
/// The longest wait between two reconnection tries.
const MAX_RETRY_MS: u32 = 30_000;

struct Connection {
    socket: WebSocket,
    // Kept alive as long as the socket is.
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_open: Closure<dyn FnMut()>,
    _on_close: Closure<dyn FnMut()>,
}

/// What to watch again after a reconnect: the run, after the highest `seq` the page holds of
/// it, numbered in which of the server's logs of the run (as `Watching` said).
pub struct WatchAgain {
    pub run: RunId,
    pub after: Option<u64>,
    pub log: Option<u64>,
}

/// Handle to the trace socket; `Copy`, the socket itself lives in local storage.
#[derive(Clone, Copy)]
pub struct TraceSocket {
    connection: StoredValue<Option<Connection>, LocalStorage>,
}

fn socket_url() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Some(format!(
        "{scheme}://{}{TRACE_SOCKET_PATH}",
        location.host().ok()?
    ))
}

fn send_watch(socket: &WebSocket, run: &RunId, after: Option<u64>, log: Option<u64>) {
    let watch = TraceClientMsg::Watch {
        run: run.clone(),
        after,
        log,
    };
    let _ = socket.send_with_str(&serde_json::to_string(&watch).expect("serializes"));
}

impl TraceSocket {
    /// Opens the socket. `on_message` gets every server message; `current_watch` says what to
    /// watch again after a reconnect.
    pub fn open(
        on_message: impl Fn(TraceServerMsg) + 'static,
        current_watch: impl Fn() -> Option<WatchAgain> + 'static,
    ) -> TraceSocket {
        let handle = TraceSocket {
            connection: StoredValue::new_local(None),
        };
        let callbacks = Rc::new(Callbacks {
            on_message,
            current_watch,
            retry_ms: Cell::new(FIRST_RETRY_MS),
        });
        connect(handle, callbacks);
        on_cleanup(move || {
            handle.connection.update_value(|c| {
                if let Some(c) = c.take() {
                    c.socket.set_onclose(None);
                    let _ = c.socket.close();
                }
            });
        });
        handle
    }

    /// Watches `run` from its start (replacing any earlier watch). If the socket is not open
    /// yet, the watch is sent when it opens.
    pub fn watch(&self, run: &RunId) {
        self.connection.with_value(|c| {
            if let Some(c) = c
                && c.socket.ready_state() == WebSocket::OPEN
            {
                send_watch(&c.socket, run, None, None);
            }
        });
    }
}

struct Callbacks<M, R> {
    on_message: M,
    current_watch: R,
    /// The wait before the next reconnection try.
    retry_ms: Cell<u32>,
}

fn connect<M, R>(handle: TraceSocket, callbacks: Rc<Callbacks<M, R>>)
where
    M: Fn(TraceServerMsg) + 'static,
    R: Fn() -> Option<WatchAgain> + 'static,
{
    let Some(url) = socket_url() else { return };
    let Ok(socket) = WebSocket::new(&url) else {
        return;
    };
    let cb = callbacks.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        if let Some(text) = ev.data().as_string() {
            match serde_json::from_str::<TraceServerMsg>(&text) {
                Ok(msg) => (cb.on_message)(msg),
                Err(e) => leptos::logging::warn!("trace socket: unreadable message: {e}"),
            }
        }
    });
    let cb = callbacks.clone();
    let socket_for_open = socket.clone();
    let on_open = Closure::<dyn FnMut()>::new(move || {
        cb.retry_ms.set(FIRST_RETRY_MS);
        if let Some(again) = (cb.current_watch)() {
            send_watch(&socket_for_open, &again.run, again.after, again.log);
        }
    });
    let on_close = Closure::<dyn FnMut()>::new(move || {
        // Dropped (server restart, network, a proxy): try again, unless the page went away;
        // each try that does not open doubles the wait, so a server that is down is not
        // hammered.
        let wait = callbacks.retry_ms.get();
        callbacks
            .retry_ms
            .set(wait.saturating_mul(2).min(MAX_RETRY_MS));
        let callbacks = callbacks.clone();
        gloo_timers::callback::Timeout::new(wait, move || {
            if handle.connection.try_with_value(|_| ()).is_some() {
                connect(handle, callbacks);
            }
        })
        .forget();
    });
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    handle.connection.set_value(Some(Connection {
        socket,
        _on_message: on_message,
        _on_open: on_open,
        _on_close: on_close,
    }));
}

//! The page's one trace WebSocket: receives the server's half of the watched run's trace.
//! Reconnects after a drop (waiting longer after each failed try, up to [`MAX_RETRY_MS`]) and
//! watches the current run again after the last message the page holds (of the server's log
//! it holds them of); closes with the component. The server pings it, so an idle proxy does
//! not cut it.
//!
//! The socket is opened for one run: its URL names it (`?watch=RUN`), so a reverse proxy that
//! hashes on the run id sends it to the instance that records the run's requests. A new run
//! opens a new socket.

use std::{cell::Cell, rc::Rc};

use leptos::prelude::*;
use protocol::{
    TRACE_SOCKET_PATH, WATCH_PARAM,
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
    /// The run named in the socket's URL (none before the first run).
    run: Option<RunId>,
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
    /// Opens a socket for the run being watched now, replacing the open one.
    reopen: StoredValue<Option<Rc<dyn Fn()>>, LocalStorage>,
}

fn socket_url(run: Option<&RunId>) -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    let query = run
        .map(|run| format!("?{WATCH_PARAM}={}", run.0))
        .unwrap_or_default();
    Some(format!(
        "{scheme}://{}{TRACE_SOCKET_PATH}{query}",
        location.host().ok()?
    ))
}

/// Closes `connection` without the reconnection its close would start.
fn close_quietly(connection: Connection) {
    connection.socket.set_onclose(None);
    let _ = connection.socket.close();
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
            reopen: StoredValue::new_local(None),
        };
        let callbacks = Rc::new(Callbacks {
            on_message,
            current_watch,
            retry_ms: Cell::new(FIRST_RETRY_MS),
        });
        let reopen: Rc<dyn Fn()> = {
            let callbacks = callbacks.clone();
            Rc::new(move || connect(handle, callbacks.clone()))
        };
        handle.reopen.set_value(Some(reopen));
        connect(handle, callbacks);
        on_cleanup(move || {
            handle.reopen.set_value(None);
            handle.connection.update_value(|c| {
                if let Some(c) = c.take() {
                    close_quietly(c);
                }
            });
        });
        handle
    }

    /// Watches `run` from its start (replacing any earlier watch): on the open socket if it
    /// was opened for `run` (when it opens, if it is still connecting), else on a new socket
    /// opened for `run` (which watches what `current_watch` says once open).
    pub fn watch(&self, run: &RunId) {
        let same_run = self.connection.with_value(|c| match c {
            Some(c) if c.run.as_ref() == Some(run) => {
                if c.socket.ready_state() == WebSocket::OPEN {
                    send_watch(&c.socket, run, None, None);
                }
                true
            }
            _ => false,
        });
        if !same_run && let Some(reopen) = self.reopen.get_value() {
            reopen();
        }
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
    // One socket at a time: a reconnection timer of an older socket may fire after a new run
    // has opened its own.
    handle.connection.update_value(|c| {
        if let Some(c) = c.take() {
            close_quietly(c);
        }
    });
    let run = (callbacks.current_watch)().map(|again| again.run);
    let Some(url) = socket_url(run.as_ref()) else {
        return;
    };
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
    let closed = socket.clone();
    let on_close = Closure::<dyn FnMut()>::new(move || {
        // Dropped (server restart, network, a proxy): try again, unless the page went away or
        // a new run has opened its own socket meanwhile; each try that does not open doubles
        // the wait, so a server that is down is not hammered.
        let wait = callbacks.retry_ms.get();
        callbacks
            .retry_ms
            .set(wait.saturating_mul(2).min(MAX_RETRY_MS));
        let callbacks = callbacks.clone();
        let closed = closed.clone();
        gloo_timers::callback::Timeout::new(wait, move || {
            let still_current = handle
                .connection
                .try_with_value(|c| c.as_ref().is_some_and(|c| c.socket == closed));
            if still_current == Some(true) {
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
        run,
        _on_message: on_message,
        _on_open: on_open,
        _on_close: on_close,
    }));
}

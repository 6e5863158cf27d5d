//! The page's one trace WebSocket: receives the server's half of the watched run's trace.
//! Reconnects after a drop and watches the current run again; closes with the component.

use std::rc::Rc;

use leptos::prelude::*;
use protocol::{
    TRACE_SOCKET_PATH,
    trace::{RunId, TraceClientMsg, TraceServerMsg},
};
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::{MessageEvent, WebSocket};

struct Connection {
    socket: WebSocket,
    // Kept alive as long as the socket is.
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_open: Closure<dyn FnMut()>,
    _on_close: Closure<dyn FnMut()>,
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

fn send_watch(socket: &WebSocket, run: &RunId) {
    let text =
        serde_json::to_string(&TraceClientMsg::Watch { run: run.clone() }).expect("serializes");
    let _ = socket.send_with_str(&text);
}

impl TraceSocket {
    /// Opens the socket. `on_message` gets every server message; `current_run` says which run
    /// to watch again after a reconnect.
    pub fn open(
        on_message: impl Fn(TraceServerMsg) + 'static,
        current_run: impl Fn() -> Option<RunId> + 'static,
    ) -> TraceSocket {
        let handle = TraceSocket {
            connection: StoredValue::new_local(None),
        };
        let callbacks = Rc::new((on_message, current_run));
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

    /// Watches `run` (replacing any earlier watch). If the socket is not open yet, the watch is
    /// sent when it opens.
    pub fn watch(&self, run: &RunId) {
        self.connection.with_value(|c| {
            if let Some(c) = c
                && c.socket.ready_state() == WebSocket::OPEN
            {
                send_watch(&c.socket, run);
            }
        });
    }
}

type Callbacks<M, R> = Rc<(M, R)>;

fn connect<M, R>(handle: TraceSocket, callbacks: Callbacks<M, R>)
where
    M: Fn(TraceServerMsg) + 'static,
    R: Fn() -> Option<RunId> + 'static,
{
    let Some(url) = socket_url() else { return };
    let Ok(socket) = WebSocket::new(&url) else {
        return;
    };
    let cb = callbacks.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        if let Some(text) = ev.data().as_string() {
            match serde_json::from_str::<TraceServerMsg>(&text) {
                Ok(msg) => (cb.0)(msg),
                Err(e) => leptos::logging::warn!("trace socket: unreadable message: {e}"),
            }
        }
    });
    let cb = callbacks.clone();
    let socket_for_open = socket.clone();
    let on_open = Closure::<dyn FnMut()>::new(move || {
        if let Some(run) = (cb.1)() {
            send_watch(&socket_for_open, &run);
        }
    });
    let on_close = Closure::<dyn FnMut()>::new(move || {
        // Dropped (server restart, network): try again shortly, unless the page went away.
        let callbacks = callbacks.clone();
        gloo_timers::callback::Timeout::new(1_000, move || {
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

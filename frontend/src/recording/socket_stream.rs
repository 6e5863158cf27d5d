//! A WebSocket wrapped by the recorder: the upgrade request, the 101, every frame each way and
//! the close are recorded as they happen, under ids the server derives the same way.

use std::{cell::RefCell, rc::Rc};

use leptos::prelude::*;
use protocol::{
    pairing,
    push::{Frame, frame_bytes},
    trace::{Actor, Detail, Header, Kind, Message, Transport},
};
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use super::recorder::Recorder;

/// What happened on a socket, for the demo to react to. `S` is what the server sends (the
/// push demo's `ServerFrame`, a pub/sub subscriber's `BrokerFrame`).
pub enum SocketEvent<S> {
    Open,
    Frame(S),
    Closed { code: u16, reason: String },
}

struct Tracking {
    rec: Recorder,
    rid: String,
    /// This socket's lifeline (`browser`, `client-2`, …).
    peer: Actor,
    url: String,
    sent: u32,
    received: u32,
    closed: bool,
}

impl Tracking {
    fn message(
        &self,
        kind: Kind,
        request_id: String,
        from: Actor,
        to: Actor,
        label: String,
    ) -> Message {
        self.rec.message(
            kind,
            Some(request_id),
            (from, to),
            Transport::WebSocket,
            label,
        )
    }
}

/// The socket's event handlers, kept alive as long as it is.
struct Listeners {
    _open: Closure<dyn FnMut()>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
}

struct Open {
    socket: WebSocket,
    _listeners: Listeners,
}

/// Handle to one recorded socket. `Copy`; the socket lives in local storage.
#[derive(Clone, Copy)]
pub struct TracedSocket {
    open: StoredValue<Option<Open>, LocalStorage>,
    tracking: StoredValue<Option<Rc<RefCell<Tracking>>>, LocalStorage>,
}

fn ws_url(path: &str) -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Some(format!("{scheme}://{}{path}", location.host().ok()?))
}

impl TracedSocket {
    /// Opens `path` as lifeline `peer`; `on_event` hears the socket open, each frame, the close.
    pub fn open<S: Frame + 'static>(
        rec: Recorder,
        path: &str,
        peer: &str,
        on_event: impl Fn(SocketEvent<S>) + 'static,
    ) -> Result<TracedSocket, String> {
        rec.run_id().ok_or("no run is in progress")?;
        let rid = rec.next_request_id().0;
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = rec.run_url(&format!("{path}{sep}as={peer}"), &rid);
        let socket = WebSocket::new(&ws_url(&url).ok_or("no page location")?)
            .map_err(|e| format!("{e:?}"))?;
        let peer = Actor::new(peer);
        let tracking = Rc::new(RefCell::new(Tracking {
            rec,
            rid: rid.clone(),
            peer: peer.clone(),
            url: url.clone(),
            sent: 0,
            received: 0,
            closed: false,
        }));
        {
            let t = tracking.borrow();
            t.rec.record(Message {
                sent_us: Some(rec.elapsed_us()),
                transport: Transport::Http1,
                detail: Some(Detail {
                    start_line: format!("GET {url} HTTP/1.1"),
                    headers: vec![
                        Header {
                            name: "connection".into(),
                            value: "Upgrade".into(),
                        },
                        Header {
                            name: "upgrade".into(),
                            value: "websocket".into(),
                        },
                        Header {
                            name: "sec-websocket-version".into(),
                            value: "13".into(),
                        },
                    ],
                    ..Detail::default()
                }),
                ..t.message(
                    Kind::Request,
                    rid.clone(),
                    peer.clone(),
                    Actor::server(),
                    format!("GET {url} (upgrade: websocket)"),
                )
            });
        }
        let on_event = Rc::new(on_event);

        let (t, cb) = (tracking.clone(), on_event.clone());
        let on_open = Closure::<dyn FnMut()>::new(move || {
            {
                let t = t.borrow();
                t.rec.record(Message {
                    recv_us: Some(t.rec.elapsed_us()),
                    transport: Transport::Http1,
                    status: Some(101),
                    detail: Some(Detail {
                        start_line: "HTTP/1.1 101 Switching Protocols".into(),
                        headers: vec![
                            Header {
                                name: "connection".into(),
                                value: "upgrade".into(),
                            },
                            Header {
                                name: "upgrade".into(),
                                value: "websocket".into(),
                            },
                        ],
                        ..Detail::default()
                    }),
                    ..t.message(
                        Kind::Response,
                        t.rid.clone(),
                        Actor::server(),
                        t.peer.clone(),
                        format!("101 Switching Protocols {}", t.url),
                    )
                });
            }
            cb(SocketEvent::Open);
        });
        let (t, cb) = (tracking.clone(), on_event.clone());
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(text) = ev.data().as_string() else {
                return;
            };
            let frame = serde_json::from_str::<S>(&text);
            {
                let mut t = t.borrow_mut();
                t.received += 1;
                let label = frame
                    .as_ref()
                    .map(Frame::summary)
                    .unwrap_or_else(|_| "unreadable frame".into());
                let (kind, from) = frame
                    .as_ref()
                    .map(Frame::drawn_as)
                    .unwrap_or((Kind::Push, "server"));
                t.rec.record(Message {
                    recv_us: Some(t.rec.elapsed_us()),
                    bytes: Some(frame_bytes(text.len(), true)),
                    detail: Some(Detail::of_body(text.clone())),
                    ..t.message(
                        kind,
                        pairing::event(&t.rid, t.received),
                        Actor::new(from),
                        t.peer.clone(),
                        label,
                    )
                });
            }
            if let Ok(frame) = frame {
                cb(SocketEvent::Frame(frame));
            }
        });
        let (t, cb) = (tracking.clone(), on_event);
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |ev: CloseEvent| {
            {
                let mut t = t.borrow_mut();
                if !t.closed {
                    t.closed = true;
                    let now = t.rec.elapsed_us();
                    t.rec.record(Message {
                        recv_us: Some(now),
                        sent_us: Some(now),
                        ..t.message(
                            Kind::Close,
                            pairing::close(&t.rid),
                            Actor::server(),
                            t.peer.clone(),
                            format!("close {} {}", ev.code(), ev.reason()),
                        )
                    });
                }
            }
            cb(SocketEvent::Closed {
                code: ev.code(),
                reason: ev.reason(),
            });
        });
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(TracedSocket {
            open: StoredValue::new_local(Some(Open {
                socket,
                _listeners: Listeners {
                    _open: on_open,
                    _message: on_message,
                    _close: on_close,
                },
            })),
            tracking: StoredValue::new_local(Some(tracking)),
        })
    }

    /// Sends `frame`, recording it.
    pub fn send(&self, frame: &impl Frame) {
        let text = serde_json::to_string(frame).expect("frames serialize");
        self.tracking.with_value(|t| {
            if let Some(t) = t {
                let mut t = t.borrow_mut();
                t.sent += 1;
                let rid = pairing::client_frame(&t.rid, t.sent);
                t.rec.record(Message {
                    sent_us: Some(t.rec.elapsed_us()),
                    bytes: Some(frame_bytes(text.len(), false)),
                    detail: Some(Detail::of_body(text.clone())),
                    ..t.message(
                        Kind::Push,
                        rid,
                        t.peer.clone(),
                        Actor::server(),
                        frame.summary(),
                    )
                });
            }
        });
        self.open.with_value(|o| {
            if let Some(o) = o {
                let _ = o.socket.send_with_str(&text);
            }
        });
    }

    /// Closes the socket with 1000, recording that this side closed it.
    pub fn close(&self) {
        self.tracking.with_value(|t| {
            if let Some(t) = t {
                let mut t = t.borrow_mut();
                if !t.closed {
                    t.closed = true;
                    let now = t.rec.elapsed_us();
                    t.rec.record(Message {
                        sent_us: Some(now),
                        ..t.message(
                            Kind::Close,
                            pairing::close(&t.rid),
                            t.peer.clone(),
                            Actor::server(),
                            "close 1000 done".into(),
                        )
                    });
                }
            }
        });
        self.open.try_update_value(|o| {
            if let Some(o) = o.take() {
                // The listeners go with `o`: unhook them so no late event calls a dropped closure.
                o.socket.set_onopen(None);
                o.socket.set_onmessage(None);
                o.socket.set_onclose(None);
                let _ = o.socket.close_with_code_and_reason(1000, "done");
            }
        });
    }
}

//! An `EventSource` wrapped by the recorder: the request, the stream opening, every event, each
//! drop and the browser's automatic reconnection with `Last-Event-ID` are recorded as they happen.

use std::{cell::RefCell, rc::Rc};

use leptos::prelude::*;
use protocol::{
    pairing,
    trace::{Actor, Detail, Header, Kind, Message, Transport},
};
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::{EventSource, MessageEvent};

use super::recorder::Recorder;

/// How long the browser waits before reconnecting; the server's `retry:` says the same.
const RETRY_US: i64 = 1_000_000;

/// Who is drawn at each end of a stream, and how its events are drawn.
#[derive(Clone)]
pub struct StreamEnds {
    /// The lifeline that opened the stream (`browser`, `client-2`, …).
    pub client: Actor,
    /// The lifeline its events come from (`server`, `broker`).
    pub sender: Actor,
    /// How an event is drawn (`event`, `deliver`).
    pub kind: Kind,
    /// An event's label from its name, id and data; the server labels its half the same.
    pub label: fn(&str, &str, &str) -> String,
}

impl Default for StreamEnds {
    fn default() -> Self {
        StreamEnds {
            client: Actor::browser(),
            sender: Actor::server(),
            kind: Kind::Event,
            label: |name, id, _| format!("event: {name} id: {id}"),
        }
    }
}

/// One event as the demo sees it.
pub struct StreamEvent {
    pub name: String,
    pub data: String,
}

struct Open {
    source: EventSource,
    _listeners: Vec<Closure<dyn FnMut(web_sys::Event)>>,
}

/// Handle to one recorded event stream; closes with the component or on [`EventStream::close`].
#[derive(Clone, Copy)]
pub struct EventStream {
    open: StoredValue<Option<Open>, LocalStorage>,
}

struct Tracking {
    rec: Recorder,
    /// The page's id for this stream (the `rid` in its URL, the same for every reconnection).
    rid: String,
    url: String,
    /// The id the current connection is traced under.
    connection: String,
    /// The last event id seen: a number, or a pub/sub stream's `topic:seq` list.
    last_id: String,
    ends: StreamEnds,
}

impl Tracking {
    fn message(&self, kind: Kind, request_id: String, label: String) -> Message {
        let ends = (self.ends.client.clone(), Actor::server());
        self.rec
            .message(kind, Some(request_id), ends, Transport::Http1, label)
    }

    fn record_request(&self, sent_us: i64, last_event_id: Option<&str>) {
        let mut headers = vec![Header {
            name: "accept".into(),
            value: "text/event-stream".into(),
        }];
        if let Some(last) = last_event_id {
            headers.push(Header {
                name: "last-event-id".into(),
                value: last.to_owned(),
            });
        }
        self.rec.record(Message {
            sent_us: Some(sent_us),
            detail: Some(Detail {
                start_line: format!("GET {} HTTP/1.1", self.url),
                headers,
                ..Detail::default()
            }),
            ..self.message(
                Kind::Request,
                self.connection.clone(),
                format!("GET {}", self.url),
            )
        });
    }
}

impl EventStream {
    /// Opens `path` (plus the run and a fresh request id) as an EventSource. `on_event` gets
    /// every event named in `names`.
    pub fn open(
        rec: Recorder,
        path: &str,
        names: &[&str],
        on_event: impl Fn(StreamEvent) + 'static,
    ) -> Result<EventStream, String> {
        Self::open_with(rec, path, names, StreamEnds::default(), on_event)
    }

    /// [`EventStream::open`] with other lifelines and event drawing (a pub/sub subscriber).
    pub fn open_with(
        rec: Recorder,
        path: &str,
        names: &[&str],
        ends: StreamEnds,
        on_event: impl Fn(StreamEvent) + 'static,
    ) -> Result<EventStream, String> {
        rec.run_id().ok_or("no run is in progress")?;
        let rid = rec.next_request_id().0;
        let url = rec.run_url(path, &rid);
        let source = EventSource::new(&url).map_err(|e| format!("{e:?}"))?;
        let tracking = Rc::new(RefCell::new(Tracking {
            rec,
            rid: rid.clone(),
            url: url.clone(),
            connection: rid,
            last_id: "0".to_owned(),
            ends,
        }));
        tracking.borrow().record_request(rec.elapsed_us(), None);

        let mut listeners = Vec::new();
        let t = tracking.clone();
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            let t = t.borrow();
            t.rec.record(Message {
                from: Actor::server(),
                to: t.ends.client.clone(),
                recv_us: Some(t.rec.elapsed_us()),
                status: Some(200),
                detail: Some(Detail {
                    start_line: "HTTP/1.1 200 OK".into(),
                    headers: vec![Header {
                        name: "content-type".into(),
                        value: "text/event-stream".into(),
                    }],
                    ..Detail::default()
                }),
                ..t.message(
                    Kind::Response,
                    t.connection.clone(),
                    format!("200 OK {} (stream open)", t.url),
                )
            });
        });
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        listeners.push(on_open);

        let on_event = Rc::new(on_event);
        for &name in names {
            let t = tracking.clone();
            let on_event = on_event.clone();
            let event_name = name.to_owned();
            let listener = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
                let Ok(ev) = ev.dyn_into::<MessageEvent>() else {
                    return;
                };
                let data = ev.data().as_string().unwrap_or_default();
                let id = ev.last_event_id();
                {
                    let mut t = t.borrow_mut();
                    t.last_id = id.clone();
                    let wire =
                        format!("event: {event_name}\nid: {id}\ndata: {data}\n\n").len() as u64;
                    let label = (t.ends.label)(&event_name, &id, &data);
                    t.rec.record(Message {
                        from: t.ends.sender.clone(),
                        to: t.ends.client.clone(),
                        transport: Transport::Sse,
                        recv_us: Some(t.rec.elapsed_us()),
                        bytes: Some(wire),
                        detail: Some(Detail::of_body(data.clone())),
                        ..t.message(t.ends.kind, pairing::event(&t.rid, &id), label)
                    });
                }
                on_event(StreamEvent {
                    name: event_name.clone(),
                    data,
                });
            });
            let _ =
                source.add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
            listeners.push(listener);
        }

        let t = tracking.clone();
        let source_for_error = source.clone();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            let mut t = t.borrow_mut();
            let now = t.rec.elapsed_us();
            if source_for_error.ready_state() == EventSource::CONNECTING {
                // The stream ended under us: the browser comes back after `retry`, saying which
                // event it saw last, and the server resumes after it.
                let last = t.last_id.clone();
                t.rec.record(Message {
                    from: t.ends.client.clone(),
                    to: t.ends.client.clone(),
                    sent_us: Some(now),
                    recv_us: Some(now),
                    ..t.message(
                        Kind::Note,
                        pairing::lost(&t.rid, &last),
                        format!("stream lost after id {last}: reconnecting"),
                    )
                });
                t.connection = pairing::reconnect(&t.rid, &last);
                t.record_request(now + RETRY_US, Some(&last));
            } else {
                t.rec.record(Message {
                    from: t.ends.client.clone(),
                    to: t.ends.client.clone(),
                    sent_us: Some(now),
                    recv_us: Some(now),
                    ..t.message(
                        Kind::Note,
                        pairing::closed(&t.rid),
                        "stream closed by the server".into(),
                    )
                });
            }
        });
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        listeners.push(on_error);

        let handle = EventStream {
            open: StoredValue::new_local(Some(Open {
                source,
                _listeners: listeners,
            })),
        };
        on_cleanup(move || handle.close());
        Ok(handle)
    }

    /// Closes the stream (the browser will not reconnect).
    pub fn close(&self) {
        self.open.try_update_value(|o| {
            if let Some(o) = o.take() {
                o.source.set_onerror(None);
                o.source.close();
            }
        });
    }
}

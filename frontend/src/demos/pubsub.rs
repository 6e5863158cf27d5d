//! Publish/subscribe: the page publishes (and can start a ticker inside the server); simulated
//! subscribers, each on its own real WebSocket or event stream and its own lifeline, receive
//! what the broker delivers. A slow subscriber handles one message at a time and is dropped
//! once its queue on the server fills; a named room shares topics with other tabs.

use leptos::{prelude::*, task::spawn_local};
use protocol::{
    pubsub::{
        BrokerFrame, Delivery, EVENT_DROPPED, EVENT_MESSAGE, PublishRequest, SubscriberFrame,
        TickerSpec, filler_text,
    },
    trace::{Actor, Kind},
};

use crate::{
    model::catalog,
    recording::{
        api,
        event_stream::{EventStream, StreamEnds},
        recorder::{Recorder, use_recorder},
        socket_stream::{SocketEvent, TracedSocket},
    },
    views::{
        demo_frame::DemoFrame,
        job_controls::NumberInput,
        share::{count_param, url_param},
    },
};

/// A subscriber's connection.
#[derive(Clone, Copy)]
enum Connection {
    Socket(TracedSocket),
    Stream(EventStream),
}

impl Connection {
    fn close(&self) {
        match self {
            Connection::Socket(s) => s.close(),
            Connection::Stream(s) => s.close(),
        }
    }
}

/// One simulated subscriber on the page.
#[derive(Clone, Copy)]
struct Sub {
    name: StoredValue<String>,
    websocket: bool,
    slow: bool,
    topics: RwSignal<Vec<String>>,
    received: RwSignal<u64>,
    last: RwSignal<String>,
    status: RwSignal<String>,
    connection: StoredValue<Option<Connection>, LocalStorage>,
}

/// The settings a subscriber is opened with.
#[derive(Clone)]
struct Settings {
    room: String,
    replay: u32,
    slow_ms: u32,
}

fn query(room: &str) -> String {
    if room.is_empty() {
        String::new()
    } else {
        format!("room={}", js_sys::encode_uri_component(room))
    }
}

fn on_delivery(sub: Sub, delivery: &Delivery) {
    sub.received.update(|n| *n += 1);
    sub.last.set(format!(
        "{} #{} from {} via {}",
        delivery.topic, delivery.seq, delivery.publisher, delivery.delivered_by
    ));
}

/// Opens `sub`'s connection for its topics.
fn connect(rec: Recorder, sub: Sub, settings: Settings) {
    let name = sub.name.get_value();
    let topics = sub.topics.get_untracked();
    if sub.websocket {
        let me = StoredValue::new(None::<TracedSocket>);
        let delivered = StoredValue::new(0u64);
        let path = format!("/api/pubsub/ws?{}", query(&settings.room));
        let opened = TracedSocket::open(rec, &path, &name, move |event| match event {
            SocketEvent::Open => me.with_value(|s| {
                if let Some(s) = s {
                    for topic in &topics {
                        s.send(&SubscriberFrame::Subscribe {
                            topic: topic.clone(),
                            replay: settings.replay,
                            prefetch: sub.slow.then_some(1),
                        });
                    }
                }
            }),
            SocketEvent::Frame(BrokerFrame::Message { delivery }) => {
                on_delivery(sub, &delivery);
                delivered.update_value(|n| *n += 1);
                if sub.slow {
                    // Handles it for a while, then acknowledges: one message at a time.
                    let upto = delivered.get_value();
                    let slow_ms = settings.slow_ms;
                    spawn_local(async move {
                        gloo_timers::future::TimeoutFuture::new(slow_ms).await;
                        me.with_value(|s| {
                            if let Some(s) = s {
                                s.send(&SubscriberFrame::Ack { upto });
                            }
                        });
                    });
                }
            }
            SocketEvent::Frame(BrokerFrame::Subscribed { topic, replayed }) => sub
                .status
                .set(format!("subscribed to {topic} ({replayed} replayed)")),
            SocketEvent::Frame(BrokerFrame::Error { error }) => sub.status.set(error),
            SocketEvent::Frame(BrokerFrame::Unsubscribed { topic }) => {
                sub.status.set(format!("unsubscribed from {topic}"))
            }
            SocketEvent::Closed { code, reason } if code != 1000 => {
                sub.status.set(format!("dropped: {code} {reason}"))
            }
            SocketEvent::Closed { .. } => sub.status.set("closed".into()),
        });
        match opened {
            Ok(s) => {
                me.set_value(Some(s));
                sub.connection.set_value(Some(Connection::Socket(s)));
            }
            Err(e) => sub.status.set(format!("could not connect: {e}")),
        }
    } else {
        let mut path = format!(
            "/api/pubsub/events?as={name}&topics={}&replay={}",
            js_sys::encode_uri_component(&topics.join(",")),
            settings.replay
        );
        if !settings.room.is_empty() {
            path = format!("{path}&{}", query(&settings.room));
        }
        let ends = StreamEnds {
            client: Actor::new(&name),
            sender: Actor::new("broker"),
            kind: Kind::Deliver,
            label: |name, id, data| match serde_json::from_str::<Delivery>(data) {
                Ok(d) if name == EVENT_MESSAGE => d.summary(),
                _ => format!("event: {name} id: {id}"),
            },
        };
        let opened = EventStream::open_with(
            rec,
            &path,
            &[EVENT_MESSAGE, EVENT_DROPPED],
            ends,
            move |ev| {
                if ev.name == EVENT_DROPPED {
                    sub.status.set(format!("dropped: {}", ev.data));
                } else if let Ok(delivery) = serde_json::from_str::<Delivery>(&ev.data) {
                    on_delivery(sub, &delivery);
                }
            },
        );
        match opened {
            Ok(s) => {
                sub.status
                    .set(format!("listening to {}", topics.join(", ")));
                sub.connection.set_value(Some(Connection::Stream(s)));
            }
            Err(e) => sub.status.set(format!("could not connect: {e}")),
        }
    }
}

#[component]
pub fn PubSub() -> impl IntoView {
    let recorder = use_recorder();
    let room = url_param("room", "");
    let topic_list = url_param("topics", "news,sport");
    let initial = url_param("subscribers", "3");
    let replay = url_param("replay", "0");
    let bytes = url_param("bytes", "64");
    let rate = url_param("rate", "2");
    let seconds = url_param("seconds", "10");
    let slow_ms = url_param("slow_ms", "1000");
    let transport = RwSignal::new("websocket".to_owned());
    let slow = RwSignal::new(false);
    let publish_topic = RwSignal::new(String::new());
    let status = RwSignal::new(String::new());
    let subs = RwSignal::new(Vec::<Sub>::new());
    let published = RwSignal::new(0u64);
    let running = recorder.running();

    let topics = move || {
        topic_list
            .get()
            .split(',')
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
    };
    let first_topic = move || topics().into_iter().next().unwrap_or_else(|| "news".into());
    let settings = move || Settings {
        room: room.get_untracked().trim().to_owned(),
        replay: replay.get_untracked().trim().parse().unwrap_or(0),
        slow_ms: slow_ms.get_untracked().trim().parse().unwrap_or(1000),
    };
    let add = move |websocket: bool, slow: bool| {
        let k = subs.with_untracked(Vec::len) + 1;
        let sub = Sub {
            name: StoredValue::new(format!("client-{k}")),
            websocket,
            slow: slow && websocket,
            topics: RwSignal::new(vec![untrack(first_topic)]),
            received: RwSignal::new(0),
            last: RwSignal::new(String::new()),
            status: RwSignal::new("connecting…".into()),
            connection: StoredValue::new_local(None),
        };
        subs.update(|s| s.push(sub));
        connect(recorder, sub, settings());
    };
    let close_all = move || {
        subs.with_untracked(|all| {
            for s in all {
                s.connection
                    .with_value(|c| c.iter().for_each(Connection::close));
            }
        })
    };
    let on_stop = Callback::new(move |_| {
        close_all();
        let room = room.get_untracked();
        spawn_local(async move {
            let _ = api::stop_ticker(recorder, room.trim()).await;
            recorder.finish_run();
        });
    });
    let on_run = Callback::new(move |_| {
        close_all();
        subs.set(Vec::new());
        published.set(0);
        recorder.start_run();
        let n = count_param(initial, 3, 0..=8);
        for k in 0..n {
            // Alternate the transports so both are on the diagram.
            add(k % 2 == 0, false);
        }
        status.set(format!(
            "{n} subscribers connected; publish, or add a late joiner to see what it misses."
        ));
    });
    let publish = move |_| {
        let topic = match publish_topic.get_untracked() {
            t if t.is_empty() => untrack(first_topic),
            t => t,
        };
        let n = published.get_untracked() + 1;
        published.set(n);
        let size: usize = bytes.get_untracked().trim().parse().unwrap_or(64);
        let message = PublishRequest {
            room: Some(room.get_untracked().trim().to_owned()).filter(|r| !r.is_empty()),
            topic,
            text: filler_text(&format!("message {n}"), size),
            publisher: None,
        };
        spawn_local(async move {
            match api::publish(recorder, &message).await {
                Ok(p) => status.set(format!(
                    "Published {} #{} (broker: {} on {}).",
                    p.topic, p.seq, p.engine, p.instance
                )),
                Err(e) => status.set(format!("The broker refused it: {e}")),
            }
        });
    };
    let start_ticker = move |_| {
        let n = |s: RwSignal<String>| s.get_untracked().trim().parse().unwrap_or(0);
        let spec = TickerSpec {
            room: Some(room.get_untracked().trim().to_owned()).filter(|r| !r.is_empty()),
            topic: untrack(first_topic),
            per_second: n(rate),
            bytes: n(bytes),
            seconds: n(seconds),
        };
        spawn_local(async move {
            match api::start_ticker(recorder, &spec).await {
                Ok(_) => status.set(format!(
                    "The ticker publishes {} per second on {} for {} s.",
                    spec.per_second, spec.topic, spec.seconds
                )),
                Err(e) => status.set(format!("Ticker refused: {e}")),
            }
        });
    };
    let stop_ticker = move |_| {
        let room = room.get_untracked();
        spawn_local(async move {
            let _ = api::stop_ticker(recorder, room.trim()).await;
            status.set("Ticker stopped.".into());
        });
    };
    let toggle = move |sub: Sub, topic: String, on: bool| {
        sub.topics.update(|t| {
            t.retain(|x| *x != topic);
            if on {
                t.push(topic.clone());
            }
        });
        if sub.websocket {
            sub.connection.with_value(|c| {
                if let Some(Connection::Socket(s)) = c {
                    if on {
                        s.send(&SubscriberFrame::Subscribe {
                            topic: topic.clone(),
                            replay: settings().replay,
                            prefetch: sub.slow.then_some(1),
                        });
                    } else {
                        s.send(&SubscriberFrame::Unsubscribe {
                            topic: topic.clone(),
                        });
                    }
                }
            });
        } else {
            // An event stream cannot say anything after its request: reconnect with the new list.
            sub.connection
                .with_value(|c| c.iter().for_each(Connection::close));
            connect(recorder, sub, settings());
        }
    };

    let subscriber_list = move || {
        subs.get()
            .into_iter()
            .map(|sub| {
                let name = sub.name.get_value();
                let kind = match (sub.websocket, sub.slow) {
                    (true, true) => "WebSocket, slow",
                    (true, false) => "WebSocket",
                    _ => "SSE",
                };
                let boxes = topics()
                    .into_iter()
                    .map(|topic| {
                        let t = topic.clone();
                        let checked = move || sub.topics.with(|ts| ts.contains(&t));
                        let t = topic.clone();
                        view! {
                            <label class="check">
                                <input type="checkbox" data-testid="subscriber-topic" data-topic=topic.clone()
                                    prop:checked=checked
                                    on:change=move |ev| toggle(sub, t.clone(), event_target_checked(&ev))/>
                                {topic.clone()}
                            </label>
                        }
                    })
                    .collect_view();
                view! {
                    <li data-testid="subscriber" data-name=name.clone()
                        data-received=move || sub.received.get().to_string()>
                        <strong>{name.clone()}</strong>
                        <span class="muted">" (" {kind} ") "</span>
                        {boxes}
                        <span data-testid="subscriber-received">{move || format!(" received {}", sub.received.get())}</span>
                        <span class="muted">{move || { let l = sub.last.get(); if l.is_empty() { String::new() } else { format!(" · last: {l}") } }}</span>
                        <span data-testid="subscriber-status">{move || format!(" · {}", sub.status.get())}</span>
                        <button type="button" data-testid="remove-subscriber" on:click=move |_| {
                            sub.connection.with_value(|c| c.iter().for_each(Connection::close));
                            sub.status.set("removed".into());
                        }>"Remove"</button>
                    </li>
                }
            })
            .collect_view()
    };
    let actors = [
        "browser", "server", "broker", "client-1", "client-2", "client-3",
    ]
    .map(Actor::new)
    .to_vec();

    view! {
        <DemoFrame
            pattern=catalog::find("pubsub").expect("catalogued")
            recorder=recorder
            actors=actors
            on_run=on_run
            on_stop=on_stop
            network_path="/api/pubsub"
            status=status
            below=move || view! {
                <section class="subscribers">
                    <h2>"Subscribers"</h2>
                    <div class="params" role="group" aria-label="Add a subscriber">
                        <label>"Transport"
                            <select data-testid="subscriber-transport" on:change=move |ev| transport.set(event_target_value(&ev))>
                                <option value="websocket">"WebSocket"</option>
                                <option value="sse">"Server-Sent Events"</option>
                            </select>
                        </label>
                        <label class="check">
                            <input type="checkbox" data-testid="subscriber-slow" prop:checked=move || slow.get()
                                on:change=move |ev| slow.set(event_target_checked(&ev))/>
                            "slow (WebSocket: acknowledges one message per slow interval)"
                        </label>
                        <button type="button" data-testid="add-subscriber" disabled=move || !running.get()
                            on:click=move |_| add(transport.get_untracked() == "websocket", slow.get_untracked())>
                            "Add subscriber"
                        </button>
                    </div>
                    <ul class="subscriber-list" data-testid="subscriber-list">{subscriber_list}</ul>
                </section>
            }
        >
            <label>
                "Room (empty: this run only; a name shares topics with other tabs)"
                <input data-testid="param-room" type="text" prop:value=move || room.get()
                    on:input=move |ev| room.set(event_target_value(&ev))/>
            </label>
            <label>
                "Topics"
                <input data-testid="param-topics" type="text" prop:value=move || topic_list.get()
                    on:input=move |ev| topic_list.set(event_target_value(&ev))/>
            </label>
            <NumberInput label="Subscribers at start" testid="param-subscribers" value=initial/>
            <NumberInput label="Replay last N on subscribe" testid="param-replay" value=replay/>
            <NumberInput label="Message bytes" testid="param-bytes" value=bytes/>
            <NumberInput label="Ticker: per second" testid="param-rate" value=rate/>
            <NumberInput label="Ticker: seconds" testid="param-seconds" value=seconds/>
            <NumberInput label="Slow subscriber: ms per message" testid="param-slow-ms" value=slow_ms/>
            <div class="publish" role="group" aria-label="Publish">
                <label>"Topic"
                    <select data-testid="publish-topic" on:change=move |ev| publish_topic.set(event_target_value(&ev))>
                        {move || topics().into_iter().map(|t| view! { <option value=t.clone()>{t.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <button type="button" data-testid="publish" disabled=move || !running.get() on:click=publish>"Publish"</button>
                <button type="button" data-testid="ticker-start" disabled=move || !running.get() on:click=start_ticker>"Start ticker"</button>
                <button type="button" data-testid="ticker-stop" disabled=move || !running.get() on:click=stop_ticker>"Stop ticker"</button>
            </div>
        </DemoFrame>
    }
}

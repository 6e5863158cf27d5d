//! Push over WebSocket: one socket carries the job's progress as the server pushes it, and a
//! chat room of simulated clients (each its own real WebSocket and lifeline): the run's own room,
//! or a named one that other tabs can join by its name.

use leptos::{prelude::*, task::spawn_local};
use protocol::{
    job::JobUpdate,
    push::{ClientFrame, ServerFrame},
    trace::Actor,
};

use crate::{
    model::catalog,
    recording::{
        api,
        recorder::use_recorder,
        socket_stream::{SocketEvent, TracedSocket},
        waiting,
    },
    views::{
        demo_frame::DemoFrame,
        job_controls::{JobInputs, JobParams, JobProgress, NumberInput},
        share::{count_param, url_param},
    },
};

#[component]
pub fn Push() -> impl IntoView {
    let recorder = use_recorder();
    let params = JobParams::new(4, 400);
    let clients = url_param("clients", "2");
    // Empty: the run's own room; a named room is shared with whoever names it (other tabs).
    let room = url_param("room", "");
    let progress = RwSignal::new(None::<JobUpdate>);
    let status = RwSignal::new(String::new());
    let chat = RwSignal::new(Vec::<String>::new());
    let sockets = StoredValue::new(Vec::<TracedSocket>::new());
    // What the run waits for before it closes its sockets.
    let job_done = RwSignal::new(false);
    let lines_expected = RwSignal::new(0usize);
    let lines_heard = RwSignal::new(0usize);
    // Chat clients in the room so far; once all are in, each says hello (so all hear all).
    let joined = RwSignal::new(0usize);
    let chatters = StoredValue::new(Vec::<(String, TracedSocket)>::new());

    let close_all = move || sockets.update_value(|s| s.drain(..).for_each(|s| s.close()));
    let on_stop = Callback::new(move |_| {
        close_all();
        recorder.finish_run();
    });
    // Finish once the job is done and every simulated client heard every hello.
    Effect::new(move |_| {
        if recorder.running().get() && job_done.get() && lines_heard.get() >= lines_expected.get() {
            close_all();
            status.set("Done: every update and every chat line was pushed; sockets closed.".into());
            recorder.finish_run();
        }
    });

    let on_run = Callback::new(move |_| {
        close_all();
        recorder.start_run();
        progress.set(None);
        chat.set(Vec::new());
        job_done.set(false);
        lines_heard.set(0);
        joined.set(0);
        chatters.set_value(Vec::new());
        let n = count_param(clients, 2, 0..=6);
        lines_expected.set(n * n);
        let room_name = room.get_untracked();
        let spec = params.spec();
        status.set("Submitting the job…".into());
        spawn_local(async move {
            let created = match api::submit_job(recorder, &spec).await {
                Ok(c) => c,
                Err(e) => {
                    status.set(format!("The server refused the job: {e}"));
                    recorder.finish_run();
                    return;
                }
            };
            status.set(format!(
                "Job {} accepted; the server pushes its progress.",
                created.job.0
            ));
            // The page's own socket follows the job (the same loop the comparison runs).
            let opened = waiting::follow_over_socket(
                recorder,
                &created.job,
                move |update| progress.set(Some(update)),
                move || job_done.set(true),
                move |error| status.set(format!("Server: {error}")),
            );
            match opened {
                Ok(s) => sockets.update_value(|all| all.push(s)),
                Err(e) => status.set(format!("Could not open the socket: {e}")),
            }
            // The chat clients join the room and, once in, say hello.
            for k in 1..=n {
                let name = format!("client-{k}");
                let me = StoredValue::new(None::<TracedSocket>);
                let (room_name, joined_as) = (room_name.clone(), name.clone());
                let opened =
                    TracedSocket::open(recorder, "/api/push/ws", &name, move |event| match event {
                        SocketEvent::Open => me.with_value(|s| {
                            if let Some(s) = s {
                                s.send(&ClientFrame::Join {
                                    room: room_name.clone(),
                                    name: joined_as.clone(),
                                });
                            }
                        }),
                        SocketEvent::Frame(ServerFrame::Notice { text }) => {
                            if text.starts_with(&format!("{joined_as} joined")) {
                                joined.update(|j| *j += 1);
                                if joined.get_untracked() == n {
                                    chatters.with_value(|all| {
                                        for (name, socket) in all {
                                            socket.send(&ClientFrame::Say {
                                                text: format!("hello from {name}"),
                                            });
                                        }
                                    });
                                }
                            }
                            chat.update(|c| c.push(format!("{joined_as} ← {text}")));
                        }
                        SocketEvent::Frame(ServerFrame::Chat { from, text, .. }) => {
                            if from.starts_with("client-") && text.starts_with("hello from") {
                                lines_heard.update(|n| *n += 1);
                            }
                            chat.update(|c| c.push(format!("{joined_as} ← {from}: {text}")));
                        }
                        // A refused join (say, a room name with characters the server does
                        // not take) means the hellos can never all arrive: the run ends here.
                        SocketEvent::Frame(ServerFrame::Error { error }) => {
                            chat.update(|c| c.push(format!("{joined_as} ← error: {error}")));
                            if recorder.running().get_untracked() {
                                close_all();
                                status.set(format!("The server refused {joined_as}: {error}"));
                                recorder.finish_run();
                            }
                        }
                        SocketEvent::Frame(_) => {}
                        SocketEvent::Closed { .. } => {}
                    });
                match opened {
                    Ok(s) => {
                        me.set_value(Some(s));
                        sockets.update_value(|all| all.push(s));
                        chatters.update_value(|all| all.push((name.clone(), s)));
                    }
                    Err(e) => status.set(format!("Could not open {name}'s socket: {e}")),
                }
            }
        });
    });

    let chat_log = move || {
        chat.get()
            .into_iter()
            .map(|line| view! { <li>{line}</li> })
            .collect_view()
    };
    // Clients on the left, the server and its worker on the right.
    let actors = ["browser", "client-1", "client-2", "server", "worker"]
        .map(Actor::new)
        .to_vec();

    view! {
        <DemoFrame
            pattern=catalog::find("push").expect("catalogued")
            recorder=recorder
            actors=actors
            on_run=on_run
            on_stop=on_stop
            network_path="/api/push/ws"
            status=status
            below=move || view! {
                <section class="chat-log">
                    <h2>"What the chat clients received"</h2>
                    <ul data-testid="chat-log">{chat_log}</ul>
                </section>
            }
        >
            <JobInputs params=params/>
            <NumberInput label="Chat clients" testid="param-clients" value=clients/>
            <label>
                "Room (name one for other tabs to join)"
                <input data-testid="param-room" type="text" placeholder="this run's room"
                    prop:value=move || room.get()
                    on:input=move |ev| room.set(event_target_value(&ev))/>
            </label>
            <JobProgress update=progress/>
        </DemoFrame>
    }
}

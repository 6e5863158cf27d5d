//! The push WebSocket with real clients: job progress, rooms, refusals, slow readers, shutdown.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use protocol::{
    push::{ClientFrame, ServerFrame},
    trace::{Kind, RunId},
};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{
        Message as WsMessage, client::IntoClientRequest, protocol::frame::coding::CloseCode,
    },
};

use backend::{Config, limits::Limits};
use common::Socket;

async fn open(server: &common::TestServer, query: &str) -> Socket {
    connect_async(server.ws_url(&format!("/api/push/ws{query}")))
        .await
        .expect("upgrade")
        .0
}

async fn send(socket: &mut Socket, frame: ClientFrame) {
    socket
        .send(WsMessage::Text(
            serde_json::to_string(&frame).unwrap().into(),
        ))
        .await
        .unwrap();
}

async fn next(socket: &mut Socket) -> ServerFrame {
    common::next_json(socket, Duration::from_secs(5)).await
}

#[tokio::test]
async fn a_followed_job_is_pushed_step_by_step_and_traced_as_frames() {
    let server = common::TestServer::start().await;
    // Steps long enough that opening the socket and following (slow on a loaded machine) land
    // before the first step ends, so the first frame is version 0.
    let created = common::create_job(server.url("/api/jobs"), 3, 500).await;
    let mut socket = open(&server, "?run=ws-1&rid=4").await;
    send(
        &mut socket,
        ClientFrame::Follow {
            job: created.job.clone(),
        },
    )
    .await;
    let mut versions = Vec::new();
    loop {
        match next(&mut socket).await {
            ServerFrame::Progress { update } => {
                versions.push(update.version);
                if update.done {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(versions.first(), Some(&0));
    assert_eq!(versions.last(), Some(&3));
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");

    let trace = server.state.trace.snapshot(&RunId("ws-1".into())).unwrap();
    let labels: Vec<(&str, &str)> = trace
        .iter()
        .map(|m| (m.request_id.as_ref().unwrap().0.as_str(), m.label.as_str()))
        .collect();
    assert!(
        labels
            .iter()
            .any(|(rid, l)| *rid == "4" && l.starts_with("GET /api/push/ws")),
        "the upgrade request"
    );
    assert!(
        trace
            .iter()
            .any(|m| m.kind == Kind::Response && m.status == Some(101)),
        "101 Switching Protocols"
    );
    let follow = labels
        .iter()
        .find(|(rid, _)| *rid == "4-c1")
        .expect("the client's frame");
    assert_eq!(follow.1, format!("follow {}", created.job.0));
    let pushed: Vec<&str> = trace
        .iter()
        .filter(|m| m.kind == Kind::Push && m.from.0 == "server")
        .map(|m| m.request_id.as_ref().unwrap().0.as_str())
        .collect();
    assert_eq!(
        pushed,
        (1..=versions.len())
            .map(|n| format!("4-e{n}"))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_room_tells_everyone_who_joined_and_what_was_said() {
    let server = common::TestServer::start().await;
    let mut ada = open(&server, "").await;
    let mut bob = open(&server, "").await;
    send(
        &mut ada,
        ClientFrame::Join {
            room: "lobby".into(),
            name: "ada".into(),
        },
    )
    .await;
    assert_eq!(
        next(&mut ada).await,
        ServerFrame::Notice {
            text: "ada joined lobby".into()
        }
    );
    send(
        &mut bob,
        ClientFrame::Join {
            room: "lobby".into(),
            name: "bob".into(),
        },
    )
    .await;
    assert_eq!(
        next(&mut ada).await,
        ServerFrame::Notice {
            text: "bob joined lobby".into()
        }
    );
    assert_eq!(
        next(&mut bob).await,
        ServerFrame::Notice {
            text: "bob joined lobby".into()
        }
    );
    send(
        &mut bob,
        ClientFrame::Say {
            text: "hello".into(),
        },
    )
    .await;
    let line = ServerFrame::Chat {
        room: "lobby".into(),
        from: "bob".into(),
        text: "hello".into(),
    };
    assert_eq!(next(&mut ada).await, line);
    assert_eq!(next(&mut bob).await, line);
    // Another room hears nothing of it.
    let mut eve = open(&server, "").await;
    send(
        &mut eve,
        ClientFrame::Join {
            room: "elsewhere".into(),
            name: "eve".into(),
        },
    )
    .await;
    assert_eq!(
        next(&mut eve).await,
        ServerFrame::Notice {
            text: "eve joined elsewhere".into()
        }
    );
    send(
        &mut ada,
        ClientFrame::Say {
            text: "still here".into(),
        },
    )
    .await;
    assert!(matches!(next(&mut ada).await, ServerFrame::Chat { .. }));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), eve.next())
            .await
            .is_err(),
        "eve heard nothing"
    );
}

#[tokio::test]
async fn a_fast_talker_is_told_to_slow_down_and_can_talk_again_after_a_pause() {
    let server = common::TestServer::start().await;
    let mut talker = open(&server, "").await;
    send(
        &mut talker,
        ClientFrame::Join {
            room: "busy".into(),
            name: "fast".into(),
        },
    )
    .await;
    // More lines at once than the burst allows.
    for n in 0..30 {
        send(
            &mut talker,
            ClientFrame::Say {
                text: format!("line {n}"),
            },
        )
        .await;
    }
    let (mut said, mut refused) = (0, 0);
    while said + refused < 30 {
        match next(&mut talker).await {
            ServerFrame::Chat { .. } => said += 1,
            ServerFrame::Error { error } => {
                assert_eq!(error, "too many chat lines: at most 10 per second");
                refused += 1;
            }
            ServerFrame::Notice { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(refused > 0, "{said} lines went through, none was refused");
    assert!(said >= 20, "the burst goes through, {said} did");
    // The socket stayed open; a moment later there is room for a line again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(
        &mut talker,
        ClientFrame::Say {
            text: "calmer now".into(),
        },
    )
    .await;
    assert_eq!(
        next(&mut talker).await,
        ServerFrame::Chat {
            room: "busy".into(),
            from: "fast".into(),
            text: "calmer now".into(),
        }
    );
}

#[tokio::test]
async fn a_full_room_refuses_one_more_member_until_someone_leaves() {
    const MAX_MEMBERS: usize = 32;
    let server = common::TestServer::start().await;
    let mut members = Vec::new();
    for n in 0..MAX_MEMBERS {
        let mut member = open(&server, "").await;
        send(
            &mut member,
            ClientFrame::Join {
                room: "full".into(),
                name: format!("m{n}"),
            },
        )
        .await;
        // Its own notice: it is in before the next one joins.
        assert_eq!(
            next(&mut member).await,
            ServerFrame::Notice {
                text: format!("m{n} joined full")
            }
        );
        members.push(member);
    }
    let join = ClientFrame::Join {
        room: "full".into(),
        name: "late".into(),
    };
    let mut late = open(&server, "").await;
    send(&mut late, join.clone()).await;
    assert_eq!(
        next(&mut late).await,
        ServerFrame::Error {
            error: "room full is full: at most 32 members".into()
        }
    );
    // The socket stays open, and once a member leaves there is room.
    members.pop().unwrap().close(None).await.unwrap();
    let mut tries = 0;
    loop {
        send(&mut late, join.clone()).await;
        match next(&mut late).await {
            ServerFrame::Notice { text } if text == "late joined full" => break,
            ServerFrame::Error { error } if error.contains("is full") && tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("expected to get in, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_unnamed_room_is_the_run_s_own() {
    let server = common::TestServer::start().await;
    let join = |name: &str| ClientFrame::Join {
        room: String::new(),
        name: name.into(),
    };
    let mut ada = open(&server, "?run=run-a&rid=1").await;
    send(&mut ada, join("ada")).await;
    assert_eq!(
        next(&mut ada).await,
        ServerFrame::Notice {
            text: "ada joined run:run-a".into()
        }
    );
    let mut bob = open(&server, "?run=run-a&rid=2").await;
    send(&mut bob, join("bob")).await;
    assert!(matches!(next(&mut bob).await, ServerFrame::Notice { .. }));
    assert!(matches!(next(&mut ada).await, ServerFrame::Notice { .. }));
    // Another run's unnamed room is another room.
    let mut eve = open(&server, "?run=run-b&rid=1").await;
    send(&mut eve, join("eve")).await;
    assert_eq!(
        next(&mut eve).await,
        ServerFrame::Notice {
            text: "eve joined run:run-b".into()
        }
    );
    send(&mut bob, ClientFrame::Say { text: "hi".into() }).await;
    let line = ServerFrame::Chat {
        room: "run:run-a".into(),
        from: "bob".into(),
        text: "hi".into(),
    };
    assert_eq!(next(&mut ada).await, line);
    assert_eq!(next(&mut bob).await, line);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), eve.next())
            .await
            .is_err(),
        "eve heard nothing"
    );
    // Without a run there is no room to default to.
    let mut nobody = open(&server, "").await;
    send(&mut nobody, join("x")).await;
    assert_eq!(
        next(&mut nobody).await,
        ServerFrame::Error {
            error: "name a room, or open the socket with run=…".into()
        }
    );
}

#[tokio::test]
async fn bad_frames_get_an_error_frame_and_the_socket_stays_open() {
    let server = common::TestServer::start().await;
    let mut socket = open(&server, "").await;
    socket
        .send(WsMessage::Text("not json".into()))
        .await
        .unwrap();
    assert!(
        matches!(next(&mut socket).await, ServerFrame::Error { error } if error.contains("unreadable frame"))
    );
    send(&mut socket, ClientFrame::Say { text: "hi".into() }).await;
    assert!(
        matches!(next(&mut socket).await, ServerFrame::Error { error } if error.contains("join a room first"))
    );
    send(
        &mut socket,
        ClientFrame::Follow {
            job: protocol::job::JobId("nope".into()),
        },
    )
    .await;
    assert!(
        matches!(next(&mut socket).await, ServerFrame::Error { error } if error.contains("no job"))
    );
    send(
        &mut socket,
        ClientFrame::Join {
            room: "<script>".into(),
            name: "x".into(),
        },
    )
    .await;
    assert!(matches!(next(&mut socket).await, ServerFrame::Error { .. }));
}

#[tokio::test]
async fn a_cross_site_page_cannot_open_a_push_socket() {
    let server = common::TestServer::start().await;
    let mut request = server.ws_url("/api/push/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match connect_async(request).await.expect_err("refused") {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status(), 403),
        other => panic!("expected a 403, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_does_not_read_is_dropped_while_the_room_goes_on() {
    // No chat rate limit: this is about a slow reader, with a talker far faster than a person.
    let server = common::TestServer::with_config(Config {
        limits: Limits {
            chat_rate: 0,
            ..Limits::default()
        },
        ..Config::default()
    })
    .await;
    let mut slow = open(&server, "").await;
    send(
        &mut slow,
        ClientFrame::Join {
            room: "flood".into(),
            name: "slow".into(),
        },
    )
    .await;
    let mut talker = open(&server, "").await;
    send(
        &mut talker,
        ClientFrame::Join {
            room: "flood".into(),
            name: "talker".into(),
        },
    )
    .await;
    // The talker says a lot and reads everything back; the slow member reads nothing. Enough
    // to overflow what the kernel's socket buffers absorb on loopback (several MB).
    const LINES: u32 = 40_000;
    let line = "x".repeat(480);
    let (mut talk_tx, mut talk_rx) = talker.split();
    let heard_so_far = Arc::new(AtomicU32::new(0));
    let counter = heard_so_far.clone();
    let reader = tokio::spawn(async move {
        let mut heard = 0u32;
        while let Ok(Some(Ok(frame))) =
            tokio::time::timeout(Duration::from_secs(5), talk_rx.next()).await
        {
            if frame.is_text() && frame.to_text().unwrap().contains("\"chat\"") {
                heard += 1;
                counter.store(heard, Ordering::Relaxed);
                if heard == LINES {
                    break;
                }
            }
        }
        heard
    });
    for said in 0..LINES {
        // A polite talker stays a few lines ahead of what it has heard back, as a person would;
        // one that outruns the room by its whole buffer is itself too slow a reader.
        while said - heard_so_far.load(Ordering::Relaxed) > 8 {
            tokio::task::yield_now().await;
        }
        let frame = serde_json::to_string(&ClientFrame::Say { text: line.clone() }).unwrap();
        talk_tx.send(WsMessage::Text(frame.into())).await.unwrap();
    }
    let heard = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("talker heard back")
        .unwrap();
    assert_eq!(heard, LINES, "the reading member received every line");
    assert_eq!(server.state.rooms.occupied(), 1, "the room goes on");
    // The slow member finds, after what was buffered, that it was closed for being too slow.
    let mut frames = 0u32;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.next())
            .await
            .expect("the stream ends")
        {
            Some(Ok(WsMessage::Close(Some(c)))) => break Some(c.code),
            Some(Ok(_)) => frames += 1,
            _ => break None,
        }
    };
    assert!(
        frames < LINES,
        "it was not sent everything ({frames} frames)"
    );
    // The 1008 close frame arrives when it fits behind what is queued in the socket buffers;
    // when it does not, the server drops the connection after its close timeout. Either way
    // the member was cut off, never sent a different close.
    assert!(
        matches!(code, Some(CloseCode::Policy) | None),
        "closed with {code:?} after {frames} frames"
    );
}

#[tokio::test]
async fn shutdown_closes_push_sockets_with_going_away() {
    let mut server = common::TestServer::start().await;
    let mut socket = open(&server, "").await;
    server.stop();
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("closed within 5 s")
        {
            Some(Ok(WsMessage::Close(Some(c)))) => break c.code,
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, CloseCode::Away);
}

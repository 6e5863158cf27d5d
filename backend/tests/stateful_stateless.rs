//! The balancer demo with real clients: in-memory sessions really fail on the other instance
//! and after a restart; token and store sessions really survive both.

mod common;

use protocol::{
    ApiError,
    stateful_stateless::{ClusterInfo, SessionView},
    trace::{Kind, RunId},
};
use reqwest::{Client, StatusCode};
use serde_json::json;

struct Browser<'a> {
    server: &'a common::TestServer,
    client: Client,
    run: String,
    rid: u32,
    /// The cookies the balancer and the instances set, as a browser keeps them.
    cookies: Vec<String>,
}

impl<'a> Browser<'a> {
    fn new(server: &'a common::TestServer, run: &str) -> Self {
        Browser {
            server,
            client: Client::new(),
            run: run.into(),
            rid: 0,
            cookies: Vec::new(),
        }
    }

    fn url(&mut self, path: &str) -> String {
        self.rid += 1;
        let sep = if path.contains('?') { '&' } else { '?' };
        self.server
            .url(&format!("{path}{sep}run={}&rid={}", self.run, self.rid))
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let request = if self.cookies.is_empty() {
            request
        } else {
            request.header("cookie", self.cookies.join("; "))
        };
        let response = request.send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            let name = pair.split('=').next().unwrap().to_owned();
            self.cookies.retain(|c| !c.starts_with(&format!("{name}=")));
            self.cookies.push(pair);
        }
        response
    }

    async fn cluster(&mut self, mode: &str, sticky: bool) -> ClusterInfo {
        let url = self.url("/api/lb/cluster");
        let response = self
            .send(
                self.client
                    .post(url)
                    .json(&json!({ "mode": mode, "sticky": sticky })),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    async fn login(&mut self, user: &str) -> SessionView {
        let url = self.url("/api/lb/login");
        let response = self
            .send(self.client.post(url).json(&json!({ "user": user })))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// `GET /api/lb/profile`: the instance's view, or the status and error.
    async fn profile(&mut self) -> Result<SessionView, (StatusCode, String)> {
        let url = self.url("/api/lb/profile");
        let response = self.send(self.client.get(url)).await;
        let status = response.status();
        if status == StatusCode::OK {
            Ok(response.json().await.unwrap())
        } else {
            Err((status, response.json::<ApiError>().await.unwrap().error))
        }
    }

    async fn restart_a(&mut self) -> ClusterInfo {
        let url = self.url("/api/lb/cluster/restart?instance=a");
        let response = self.send(self.client.post(url)).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

#[tokio::test]
async fn in_memory_sessions_fail_on_the_other_instance_and_the_refusal_is_traced() {
    let server = common::TestServer::start().await;
    let mut browser = Browser::new(&server, "mem");
    let info = browser.cluster("memory", false).await;
    assert_eq!(info.instances.len(), 2);
    assert_ne!(info.instances[0].port, info.instances[1].port);

    let login = browser.login("ada").await;
    assert_eq!(login.instance, "instance-a", "round robin starts at a");
    // Round robin: b, a, b, a. B never saw the session; A has it.
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(browser.profile().await);
    }
    for (i, answer) in answers.iter().enumerate() {
        if i % 2 == 0 {
            let (status, error) = answer.as_ref().unwrap_err();
            assert_eq!(*status, StatusCode::UNAUTHORIZED);
            assert!(
                error.contains("instance-b") && error.contains("memory"),
                "{error}"
            );
        } else {
            let view = answer.as_ref().unwrap();
            assert_eq!(
                (view.instance.as_str(), view.user.as_str()),
                ("instance-a", "ada")
            );
        }
    }
    assert_eq!(
        answers[3].as_ref().unwrap().requests,
        2,
        "a counts its own session's requests"
    );

    // The trace has the lifelines and the reason for each refusal.
    let trace = server.state.trace.snapshot(&RunId("mem".into())).unwrap();
    let actors: std::collections::BTreeSet<&str> = trace
        .iter()
        .flat_map(|m| [m.from.0.as_str(), m.to.0.as_str()])
        .collect();
    for actor in ["browser", "server", "lb", "instance-a", "instance-b"] {
        assert!(actors.contains(actor), "{actor} in {actors:?}");
    }
    let notes: Vec<&str> = trace
        .iter()
        .filter(|m| m.kind == Kind::Note && m.from.0 == "instance-b")
        .map(|m| m.label.as_str())
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].starts_with("401: no session s-"), "{}", notes[0]);
    let refused = trace
        .iter()
        .filter(|m| m.kind == Kind::Response && m.from.0 == "instance-b" && m.to.0 == "lb")
        .filter(|m| m.status == Some(401))
        .count();
    assert_eq!(refused, 2);
}

/// Each hop inside the process is drawn at its real times: the request from when it left to when
/// the next actor got it, the answer from when that actor answered to when it was back; the
/// listener's time stamps are taken off on the way (never shown, never passed on).
#[tokio::test]
async fn hops_between_actors_are_timed_at_both_ends() {
    let server = common::TestServer::start().await;
    let mut browser = Browser::new(&server, "timed");
    browser.cluster("token", false).await;
    browser.login("ada").await;
    let url = browser.url("/api/lb/profile");
    let response = browser.send(browser.client.get(url)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .keys()
            .all(|k| !k.as_str().starts_with("x-hop-")),
        "{:?}",
        response.headers()
    );

    let trace = server.state.trace.snapshot(&RunId("timed".into())).unwrap();
    let hops: Vec<_> = trace
        .iter()
        .filter(|m| matches!(m.kind, Kind::Request | Kind::Response))
        .filter(|m| m.from.0 != "browser" && m.to.0 != "browser")
        .collect();
    let requests: Vec<_> = hops.iter().filter(|m| m.kind == Kind::Request).collect();
    // Login and profile each go server → lb → an instance.
    assert!(requests.len() >= 4, "{requests:#?}");
    for request in requests {
        let (left, arrived) = (request.sent_us.unwrap(), request.recv_us.unwrap());
        assert!(
            left < arrived,
            "{} took no time: {request:#?}",
            request.label
        );
        let answer = hops
            .iter()
            .find(|m| m.kind == Kind::Response && m.request_id == request.request_id)
            .unwrap_or_else(|| panic!("an answer to {}", request.label));
        let (answered, back) = (answer.sent_us.unwrap(), answer.recv_us.unwrap());
        assert!(arrived <= answered && answered < back, "{answer:#?}");
        let headers = &answer.detail.as_ref().unwrap().headers;
        assert!(
            headers.iter().all(|h| !h.name.starts_with("x-hop-")),
            "{headers:?}"
        );
    }
}

#[tokio::test]
async fn sticky_sessions_hold_until_the_instance_restarts() {
    let server = common::TestServer::start().await;
    let mut browser = Browser::new(&server, "sticky");
    browser.cluster("memory", true).await;
    assert_eq!(browser.login("ada").await.instance, "instance-a");
    assert!(browser.cookies.iter().any(|c| c == "lb_sticky=instance-a"));
    for _ in 0..3 {
        assert_eq!(browser.profile().await.unwrap().instance, "instance-a");
    }
    let before = browser.restart_a().await;
    assert_eq!(before.instances[0].generation, 2);
    let (status, error) = browser.profile().await.unwrap_err();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(error.contains("restarted"), "{error}");
}

#[tokio::test]
async fn stateless_sessions_survive_both_instances_and_a_restart() {
    let server = common::TestServer::start().await;
    for mode in ["token", "store"] {
        let mut browser = Browser::new(&server, mode);
        browser.cluster(mode, false).await;
        browser.login("grace").await;
        let mut served = Vec::new();
        for i in 0..4 {
            if i == 2 {
                browser.restart_a().await;
            }
            let view = browser
                .profile()
                .await
                .unwrap_or_else(|e| panic!("{mode}: {e:?}"));
            assert_eq!(view.user, "grace");
            served.push(view.instance);
        }
        assert_eq!(
            served,
            ["instance-b", "instance-a", "instance-b", "instance-a"],
            "{mode}"
        );
        let trace = server.state.trace.snapshot(&RunId(mode.into())).unwrap();
        let store_hops = trace.iter().filter(|m| m.to.0 == "store").count();
        assert_eq!(store_hops, if mode == "store" { 5 } else { 0 }, "{mode}");
    }
}

#[tokio::test]
async fn wrong_input_gets_a_json_4xx_and_the_cluster_keeps_working() {
    let server = common::TestServer::start().await;
    let mut browser = Browser::new(&server, "bad");
    // No cluster yet.
    assert_eq!(
        browser.profile().await.unwrap_err().0,
        StatusCode::NOT_FOUND
    );
    // Untraced: refused.
    let response = Client::new()
        .get(server.url("/api/lb/profile"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    browser.cluster("token", false).await;
    let url = browser.url("/api/lb/cluster/restart?instance=z");
    assert_eq!(browser.send(browser.client.post(url)).await.status(), 422);
    let url = browser.url("/api/lb/login");
    let response = browser
        .send(browser.client.post(url).json(&json!({ "user": "a b" })))
        .await;
    assert_eq!(response.status(), 422);
    // The instance's refusal reaches the browser as the instance wrote it: one JSON content
    // type and the instance's own reason, not wrapped again on the way out.
    let types: Vec<_> = response.headers().get_all("content-type").iter().collect();
    assert_eq!(types, ["application/json"]);
    let body: serde_json::Value = response.json().await.unwrap();
    let reason = body["error"].as_str().unwrap();
    assert!(reason.starts_with("user must be"), "{body}");
    let url = browser.url("/api/lb/cluster");
    let response = browser
        .send(browser.client.post(url).json(&json!({ "mode": "disk" })))
        .await;
    assert_eq!(response.status(), 422);

    // No cookie, then a forged token: 401 with a reason.
    let (status, error) = browser.profile().await.unwrap_err();
    assert_eq!(
        (status, error.contains("log in first")),
        (StatusCode::UNAUTHORIZED, true)
    );
    browser.login("ada").await;
    for cookie in browser
        .cookies
        .iter_mut()
        .filter(|c| c.starts_with("session="))
    {
        *cookie = cookie.replacen("ada", "eve", 1);
    }
    let (status, error) = browser.profile().await.unwrap_err();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(error.contains("bad signature"), "{error}");

    // A fresh login still works; then the run ends and its listeners stop.
    browser.cookies.clear();
    browser.login("ada").await;
    assert!(browser.profile().await.is_ok());
    assert_eq!(server.state.clusters.len(), 1);
    let url = browser.url("/api/lb/cluster");
    assert_eq!(browser.send(browser.client.delete(url)).await.status(), 200);
    assert!(server.state.clusters.is_empty());
    assert_eq!(
        browser.profile().await.unwrap_err().0,
        StatusCode::NOT_FOUND
    );
}

/// The same contract for both session-store engines: a session counts its requests, an unknown
/// id is no session. Redis only where the suite runs with one (`make test` starts it).
#[tokio::test]
async fn both_session_store_engines_keep_the_same_contract() {
    use backend::session_store::{self, MemorySessions, RedisSessions, SessionStore};
    let mut engines: Vec<(&str, Box<dyn SessionStore>)> =
        vec![("memory", Box::new(MemorySessions::default()))];
    match std::env::var("PATTERNSCOPE_TEST_REDIS") {
        Ok(url) => engines.push((
            "redis",
            Box::new(RedisSessions::connect(&url).await.unwrap()),
        )),
        Err(_) => {
            eprintln!("!!! SKIPPED the Redis session store: PATTERNSCOPE_TEST_REDIS is not set")
        }
    }
    for (name, store) in engines {
        let id = store.create(None, "ada").await.unwrap();
        let first = store.touch(&id).await.unwrap().expect(name);
        assert_eq!((first.user.as_str(), first.requests), ("ada", 1), "{name}");
        assert_eq!(
            store.touch(&id).await.unwrap().unwrap().requests,
            2,
            "{name}"
        );
        assert_eq!(store.touch("s-unknown").await.unwrap(), None, "{name}");
        // Each client its share: one past it is a 429 with Retry-After, another client is not.
        let client = |n| Some(backend::ClientId::of([198, 51, 100, n].into()));
        for _ in 0..session_store::SESSIONS_PER_CLIENT {
            store.create(client(1), "ada").await.expect(name);
        }
        match store.create(client(1), "ada").await {
            Err(backend::AppError::RateLimited {
                message,
                retry_after,
            }) => {
                assert!(message.starts_with("one client may"), "{name}: {message}");
                assert!(retry_after.as_secs() >= 1, "{name}");
            }
            other => panic!("{name}: past the share: {other:?}"),
        }
        store.create(client(2), "bob").await.expect(name);
    }
}

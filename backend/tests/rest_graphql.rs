//! The REST vs GraphQL demo with a real client: the REST calls a screen needs, the one GraphQL
//! query that fills the same screen with the same data, the resolvers' loads drawn on the run
//! (one per item unbatched, one per level batched), and bad input as 4xx JSON.

mod common;

use std::collections::BTreeSet;

use protocol::{
    ApiError,
    rest_graphql::{Comment, Named, Post, SCREEN_QUERY, Screen, ScreenAnswer, ScreenPost, User},
    trace::{Kind, Message, RunId},
};
use reqwest::{Client, StatusCode};
use serde_json::json;

fn server_trace(server: &common::TestServer, run: &str) -> Vec<Message> {
    server.state.trace.snapshot(&RunId(run.into())).unwrap()
}

/// The loads the server drew for `run`: what each asked for.
fn loads(trace: &[Message]) -> Vec<String> {
    trace
        .iter()
        .filter(|m| m.kind == Kind::Request && m.to.0 == "db")
        .map(|m| m.label.clone())
        .collect()
}

async fn get<T: serde::de::DeserializeOwned>(server: &common::TestServer, path: &str) -> T {
    let response = reqwest::get(server.url(path)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

/// The screen as a REST client fills it: the user and posts, a call per post for its comments,
/// a call per commenter for their name.
async fn rest_screen(server: &common::TestServer, run: &str) -> (Screen, usize) {
    let q = format!("run={run}&rid=");
    let user: User = get(server, &format!("/api/rest/users/7?{q}1")).await;
    let posts: Vec<Post> = get(server, &format!("/api/rest/users/7/posts?limit=5&{q}2")).await;
    let mut calls = 2;
    let mut screen = Screen::default();
    screen.user.name = user.name;
    screen.user.username = user.username;
    for post in posts {
        calls += 1;
        let comments: Vec<Comment> = get(
            server,
            &format!("/api/rest/posts/{}/comments?{q}c{}", post.id, post.id),
        )
        .await;
        let mut commenters = Vec::new();
        for c in &comments {
            if !commenters.contains(&c.author_id) {
                commenters.push(c.author_id);
            }
        }
        let mut names = Vec::new();
        for id in commenters {
            calls += 1;
            let u: User = get(server, &format!("/api/rest/users/{id}?{q}u{id}")).await;
            names.push(Named { name: u.name });
        }
        screen.user.posts.push(ScreenPost {
            title: post.title,
            comment_count: comments.len() as u32,
            commenters: names,
        });
    }
    (screen, calls)
}

async fn graphql(server: &common::TestServer, run: &str, batch: bool) -> reqwest::Response {
    Client::new()
        .post(server.url(&format!("/api/graphql?batch={batch}&run={run}&rid=1")))
        .json(&json!({ "query": SCREEN_QUERY, "variables": { "user": 7, "posts": 5 } }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn one_graphql_query_fills_the_screen_that_takes_rest_many_calls() {
    let server = common::TestServer::start().await;
    let (by_rest, calls) = rest_screen(&server, "rest").await;
    let commenters: usize = by_rest.user.posts.iter().map(|p| p.commenters.len()).sum();
    assert_eq!(calls, 2 + 5 + commenters);
    assert!(calls > 10, "{calls} calls");
    // Each REST call made one load.
    assert_eq!(loads(&server_trace(&server, "rest")).len(), calls);

    let response = graphql(&server, "gql", false).await;
    assert_eq!(response.status(), StatusCode::OK);
    let timing = response.headers()["server-timing"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(timing.contains("resolve"), "{timing}");
    let by_graphql: ScreenAnswer = response.json().await.unwrap();
    assert_eq!(by_graphql.data, by_rest, "the same screen, the same data");
    assert_eq!(by_graphql.data.fields(), 2 + 10 + commenters);

    // Unbatched: the user, the posts, then per post its comments twice (count, commenters) and
    // each commenter: the N+1 inside the server.
    let unbatched = loads(&server_trace(&server, "gql"));
    assert_eq!(unbatched.len(), 2 + 5 * 2 + commenters, "{unbatched:#?}");
    // Batched: the user, the posts, all comments in one load, all commenters in one.
    let response = graphql(&server, "batched", true).await;
    assert_eq!(response.status(), StatusCode::OK);
    let batched_screen: ScreenAnswer = response.json().await.unwrap();
    assert_eq!(batched_screen.data, by_rest);
    let batched = loads(&server_trace(&server, "batched"));
    assert_eq!(batched.len(), 4, "{batched:#?}");
    assert!(
        batched[2].starts_with("load comments of posts "),
        "{batched:#?}"
    );
    assert!(batched[3].starts_with("load users "), "{batched:#?}");
    // Each load is a request to the db and its answer back, paired.
    let trace = server_trace(&server, "batched");
    let ids: BTreeSet<_> = trace
        .iter()
        .filter(|m| m.to.0 == "db" || m.from.0 == "db")
        .map(|m| (m.kind == Kind::Request, m.request_id.clone()))
        .collect();
    assert_eq!(ids.len(), 8, "four requests and four answers");
}

#[tokio::test]
async fn a_run_over_a_slow_link_pays_its_round_trip_per_call() {
    let server = common::TestServer::start().await;
    let started = std::time::Instant::now();
    let response = reqwest::get(server.url("/api/rest/users/1?run=r&rid=1&link=3g"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed().as_millis() >= 300);
}

#[tokio::test]
async fn bad_input_is_a_json_4xx() {
    let server = common::TestServer::start().await;
    let client = Client::new();
    for (path, status) in [
        ("/api/rest/users/abc", 400),
        ("/api/rest/users/0", 404),
        ("/api/rest/users/41", 404),
        ("/api/rest/users/1?run=r&rid=1&link=far", 400),
        ("/api/rest/users/1/posts?limit=0", 422),
        ("/api/rest/users/1/posts?limit=9", 422),
        ("/api/rest/users/99/posts", 404),
        ("/api/rest/posts/0/comments", 404),
        ("/api/rest/posts/x/comments", 400),
    ] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let _: ApiError = response.json().await.expect(path);
    }
    for (body, status, says) in [
        (
            json!({ "query": "{ user(id: 1) { nme } }" }),
            400,
            "Unknown field",
        ),
        (json!({ "query": "{ user(id: 1) { name " }), 400, "expected"),
        (
            json!({ "query": "{ user(id: 77) { name } }" }),
            400,
            "no user 77",
        ),
        (
            json!({ "query": "{ user(id: 1) { posts(last: 50) { title } } }" }),
            400,
            "posts(last:)",
        ),
        (
            json!({ "query": "{ user(id: 1) { posts { commenters { posts { commenters { posts { commenters { name } } } } } } } }" }),
            400,
            "nested too deep",
        ),
        (json!({ "query": 5 }), 422, "query"),
        (json!({ "query": "x".repeat(9000) }), 413, "at most"),
    ] {
        let response = client
            .post(server.url("/api/graphql"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        let error: ApiError = response.json().await.unwrap();
        assert!(error.error.contains(says), "{body}: {}", error.error);
    }
}

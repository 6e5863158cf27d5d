//! REST vs GraphQL: one screen of an app (a user, their newest posts, each post's comment count
//! and commenters) filled two ways on the same data. The REST lane makes the calls a REST client
//! really makes (the user and the posts, then one call per post, then one per commenter); the
//! GraphQL lane sends one query, and the server's resolvers load the data, drawn on the `db`
//! lifeline, per item or batched. What each lane cost is measured from the trace.

use std::collections::HashMap;

use futures_util::future::join_all;
use leptos::{prelude::*, task::spawn_local};
use protocol::{
    rest_graphql::{Comment, Named, Post, Screen, ScreenPost, User, leaf_fields},
    trace::{Actor, Kind},
};

use crate::{
    model::{
        catalog,
        format::{human_bytes, human_us},
        merge::Drawn,
        metrics::is_client,
        phases::HANDED_TO_PAGE,
    },
    recording::{api, recorder::use_recorder},
    views::{demo_frame::DemoFrame, job_controls::NumberInput, share::url_param},
};

/// The two ways of filling the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Rest,
    Graphql,
}

impl Lane {
    pub const BOTH: [Lane; 2] = [Lane::Rest, Lane::Graphql];

    pub fn name(self) -> &'static str {
        match self {
            Lane::Rest => "REST",
            Lane::Graphql => "GraphQL",
        }
    }

    /// The prefix of its metrics' `data-name`.
    pub fn key(self) -> &'static str {
        match self {
            Lane::Rest => "rest",
            Lane::Graphql => "graphql",
        }
    }

    /// Whether `d` is a request of this lane sent by the page.
    fn sent(self, d: &Drawn) -> bool {
        let path = match self {
            Lane::Rest => "/api/rest/",
            Lane::Graphql => "/api/graphql",
        };
        d.kind == Kind::Request && is_client(&d.from) && d.label.contains(path)
    }

    /// The note the page writes when this lane's screen is complete.
    fn done_note(self, fields: usize) -> String {
        format!("screen complete ({}): {fields} fields shown", self.name())
    }

    /// The fields shown, if `d` is this lane's done note.
    fn fields_shown(self, d: &Drawn) -> Option<usize> {
        let prefix = format!("screen complete ({}): ", self.name());
        d.label
            .strip_prefix(&prefix)?
            .split(' ')
            .next()?
            .parse()
            .ok()
    }
}

/// What one lane cost, measured from the trace (so an imported run shows the same).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LaneCost {
    pub requests: usize,
    /// Waits in a row: a request sent after an answer of the lane's earlier ones arrived
    /// starts a new round trip.
    pub round_trips: usize,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Leaf values in the answers' JSON bodies: what came over the wire.
    pub fields_fetched: usize,
    /// What the screen shows (the page's note when it was complete).
    pub fields_shown: Option<usize>,
    /// Loads the server made for the lane's requests (the `db` lifeline).
    pub loads: usize,
    /// From the lane's first request to its screen being complete.
    pub screen_us: Option<i64>,
}

pub fn lane_cost(trace: &[Drawn], lane: Lane) -> Option<LaneCost> {
    let mut sent: Vec<&Drawn> = trace.iter().filter(|d| lane.sent(d)).collect();
    if sent.is_empty() {
        return None;
    }
    sent.sort_by_key(|d| d.sent_us);
    let answer = |req: &Drawn| {
        trace.iter().find(|d| {
            d.kind == Kind::Response
                && is_client(&d.to)
                && d.recv_us.is_some()
                && d.request_id.is_some()
                && d.request_id == req.request_id
        })
    };
    let mut cost = LaneCost {
        requests: sent.len(),
        ..LaneCost::default()
    };
    // The earliest answer of the current round trip's requests.
    let mut first_answer: Option<i64> = None;
    for req in &sent {
        if cost.round_trips == 0 || first_answer.is_some_and(|at| req.sent_us >= at) {
            cost.round_trips += 1;
            first_answer = None;
        }
        cost.bytes_up += req.bytes.unwrap_or(0);
        if let Some(a) = answer(req) {
            cost.bytes_down += a.bytes.unwrap_or(0);
            cost.fields_fetched += serde_json::from_str::<serde_json::Value>(&a.detail.body)
                .map(|v| leaf_fields(&v))
                .unwrap_or(0);
            // When the page's code had it: a request its answer made the page send comes after
            // that. (The network's end can come while the page is still sending the requests of
            // the same round, all made in one task, on a busy machine.)
            let at = a
                .detail
                .phases
                .iter()
                .find(|p| p.name == HANDED_TO_PAGE)
                .map(|p| p.start_us)
                .or(a.recv_us)
                .unwrap_or(i64::MAX);
            first_answer = Some(first_answer.map_or(at, |f| f.min(at)));
        }
    }
    let rids: Vec<String> = sent
        .iter()
        .filter_map(|d| Some(format!("{}-", d.request_id.as_ref()?.0)))
        .collect();
    cost.loads = trace
        .iter()
        .filter(|d| d.kind == Kind::Request && d.to.0 == "db")
        .filter(|d| {
            d.request_id
                .as_ref()
                .is_some_and(|r| rids.iter().any(|p| r.0.starts_with(p.as_str())))
        })
        .count();
    let done = trace.iter().find(|d| lane.fields_shown(d).is_some());
    cost.fields_shown = done.and_then(|d| lane.fields_shown(d));
    cost.screen_us = done.map(|d| d.sent_us - sent[0].sent_us);
    Some(cost)
}

/// The screen as a REST client fills it: the user and their posts at once, then every post's
/// comments at once, then every commenter not yet known at once (a client that caches them).
async fn rest_lane(
    rec: crate::recording::recorder::Recorder,
    user: u32,
    posts: u32,
) -> Result<Screen, String> {
    let user_path = format!("/api/rest/users/{user}");
    let posts_path = format!("/api/rest/users/{user}/posts?limit={posts}");
    let (found, newest) = futures_util::join!(
        api::rest_get::<User>(rec, &user_path),
        api::rest_get::<Vec<Post>>(rec, &posts_path),
    );
    let (found, newest) = (found?, newest?);
    let comments: Vec<Vec<Comment>> = join_all(newest.iter().map(|p| {
        let path = format!("/api/rest/posts/{}/comments", p.id);
        async move { api::rest_get::<Vec<Comment>>(rec, &path).await }
    }))
    .await
    .into_iter()
    .collect::<Result<_, _>>()?;
    let authors_of = |list: &[Comment]| {
        let mut ids: Vec<u32> = Vec::new();
        for c in list {
            if !ids.contains(&c.author_id) {
                ids.push(c.author_id);
            }
        }
        ids
    };
    let mut everyone: Vec<u32> = Vec::new();
    for list in &comments {
        for id in authors_of(list) {
            if !everyone.contains(&id) {
                everyone.push(id);
            }
        }
    }
    let names: HashMap<u32, String> = join_all(everyone.iter().map(|id| {
        let path = format!("/api/rest/users/{id}");
        async move { api::rest_get::<User>(rec, &path).await }
    }))
    .await
    .into_iter()
    .map(|u| u.map(|u| (u.id, u.name)))
    .collect::<Result<_, _>>()?;
    let mut screen = Screen::default();
    screen.user.name = found.name;
    screen.user.username = found.username;
    for (post, list) in newest.into_iter().zip(&comments) {
        screen.user.posts.push(ScreenPost {
            title: post.title,
            comment_count: list.len() as u32,
            commenters: authors_of(list)
                .into_iter()
                .filter_map(|id| names.get(&id).map(|n| Named { name: n.clone() }))
                .collect(),
        });
    }
    Ok(screen)
}

/// One row of the cost table: what it measures and each lane's figure.
struct CostRow {
    name: &'static str,
    label: &'static str,
    figure: fn(&LaneCost) -> Option<(f64, String)>,
}

const COST_ROWS: [CostRow; 8] = [
    CostRow {
        name: "requests",
        label: "requests",
        figure: |c| Some((c.requests as f64, c.requests.to_string())),
    },
    CostRow {
        name: "round-trips",
        label: "round trips in a row",
        figure: |c| Some((c.round_trips as f64, c.round_trips.to_string())),
    },
    CostRow {
        name: "bytes-up",
        label: "bytes up",
        figure: |c| Some((c.bytes_up as f64, human_bytes(c.bytes_up))),
    },
    CostRow {
        name: "bytes-down",
        label: "bytes down",
        figure: |c| Some((c.bytes_down as f64, human_bytes(c.bytes_down))),
    },
    CostRow {
        name: "fields-fetched",
        label: "fields fetched",
        figure: |c| Some((c.fields_fetched as f64, c.fields_fetched.to_string())),
    },
    CostRow {
        name: "fields-shown",
        label: "fields the screen shows",
        figure: |c| c.fields_shown.map(|n| (n as f64, n.to_string())),
    },
    CostRow {
        name: "loads",
        label: "loads inside the server",
        figure: |c| Some((c.loads as f64, c.loads.to_string())),
    },
    CostRow {
        name: "screen-ms",
        label: "time to a complete screen",
        figure: |c| c.screen_us.map(|us| (us as f64 / 1000.0, human_us(us))),
    },
];

#[component]
fn CostTable(trace: ReadSignal<Vec<Drawn>>) -> impl IntoView {
    let costs = Memo::new(move |_| {
        trace.with(|t| {
            Lane::BOTH
                .iter()
                .filter_map(|&lane| Some((lane, lane_cost(t, lane)?)))
                .collect::<Vec<_>>()
        })
    });
    view! {
        <Show when=move || costs.with(|c| !c.is_empty())>
            <table class="results lane-costs" data-testid="lane-costs">
                <caption>"What each lane cost, measured from the trace"</caption>
                <thead>
                    <tr>
                        <th scope="col">"measure"</th>
                        {move || costs.get().into_iter().map(|(lane, _)| view! {
                            <th scope="col">{lane.name()}</th>
                        }).collect_view()}
                    </tr>
                </thead>
                <tbody>
                    {move || COST_ROWS.iter().map(|row| {
                        let cells = costs.get().into_iter().map(|(lane, cost)| {
                            let name = format!("{}-{}", lane.key(), row.name);
                            match (row.figure)(&cost) {
                                Some((value, shown)) => view! {
                                    <td data-testid="metric" data-name=name data-value=value.to_string()>{shown}</td>
                                }.into_any(),
                                None => view! { <td>"–"</td> }.into_any(),
                            }
                        }).collect_view();
                        view! { <tr><th scope="row">{row.label}</th>{cells}</tr> }
                    }).collect_view()}
                </tbody>
            </table>
        </Show>
    }
}

/// The app's screen as one lane filled it.
#[component]
fn AppScreen(lane: Lane, screen: Screen) -> impl IntoView {
    let posts = screen.user.posts.clone();
    view! {
        <section class="app-screen" data-testid="screen" data-lane=lane.key()>
            <h3>{format!("Filled by {}", lane.name())}</h3>
            <p class="who"><strong>{screen.user.name.clone()}</strong>" @"{screen.user.username.clone()}</p>
            <ul>
                {posts.into_iter().map(|p| {
                    let names = p.commenters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
                    let count = match p.comment_count {
                        0 => "no comments".to_owned(),
                        1 => "1 comment".to_owned(),
                        n => format!("{n} comments"),
                    };
                    let by = if names.is_empty() { String::new() } else { format!(" · {names}") };
                    view! {
                        <li data-testid="screen-post">
                            <span class="post-title">{p.title}</span>
                            <span class="post-meta">{count}{by}</span>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
    }
}

#[component]
pub fn RestGraphql() -> impl IntoView {
    let recorder = use_recorder();
    let lanes = url_param("lanes", "both");
    let user = url_param("user", "7");
    let posts = url_param("posts", "5");
    let batch = url_param("batch", "false");
    let status = RwSignal::new(String::new());
    let screens = RwSignal::new(Vec::<(Lane, Screen)>::new());

    let on_stop = Callback::new(move |_| recorder.finish_run());
    let on_run = Callback::new(move |_| {
        recorder.start_run();
        screens.set(Vec::new());
        let number = |s: RwSignal<String>| s.get_untracked().trim().parse::<u32>().unwrap_or(0);
        // Out-of-range values go to the server, whose 4xx names them.
        let (user, posts) = (number(user), number(posts));
        let batch = batch.get_untracked() == "true";
        let chosen: Vec<Lane> = match lanes.get_untracked().as_str() {
            "rest" => vec![Lane::Rest],
            "graphql" => vec![Lane::Graphql],
            _ => Lane::BOTH.to_vec(),
        };
        spawn_local(async move {
            for lane in chosen {
                status.set(format!("Filling the screen with {}…", lane.name()));
                let filled = match lane {
                    Lane::Rest => rest_lane(recorder, user, posts).await,
                    Lane::Graphql => {
                        let query = format!("batch={batch}");
                        api::graphql_screen(recorder, &query, user, posts)
                            .await
                            .map(|answer| answer.data)
                    }
                };
                match filled {
                    Ok(screen) => {
                        recorder.note(Kind::Work, lane.done_note(screen.fields()));
                        screens.update(|s| s.push((lane, screen)));
                    }
                    Err(e) => {
                        status.set(format!("{} failed: {e}", lane.name()));
                        recorder.finish_run();
                        return;
                    }
                }
            }
            status.set(
                "Done: the same screen, filled each way; the table compares what it cost.".into(),
            );
            recorder.finish_run();
        });
    });

    let trace = recorder.trace();
    view! {
        <DemoFrame
            pattern=catalog::find("rest-graphql").expect("catalogued")
            recorder=recorder
            actors=["browser", "server", "db"].map(Actor::new).to_vec()
            on_run=on_run
            on_stop=on_stop
            network_path="/api/rest/"
            status=status
            below=move || view! {
                <CostTable trace=trace/>
                <div class="app-screens">
                    {move || screens.get().into_iter().map(|(lane, screen)| view! {
                        <AppScreen lane=lane screen=screen/>
                    }).collect_view()}
                </div>
            }
        >
            <label>
                "Lanes"
                <select data-testid="param-lanes" prop:value=move || lanes.get()
                    on:change=move |ev| lanes.set(event_target_value(&ev))>
                    <option value="both">"REST, then GraphQL"</option>
                    <option value="rest">"REST only"</option>
                    <option value="graphql">"GraphQL only"</option>
                </select>
            </label>
            <NumberInput label="User (1–40)" testid="param-user" value=user/>
            <NumberInput label="Posts (1–8)" testid="param-posts" value=posts/>
            <label>
                "GraphQL resolvers"
                <select data-testid="param-batch" prop:value=move || batch.get()
                    on:change=move |ev| batch.set(event_target_value(&ev))>
                    <option value="false">"one load per item (N+1)"</option>
                    <option value="true">"batched (DataLoader)"</option>
                </select>
            </label>
        </DemoFrame>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::trace::{Actor, Detail, RequestId, Transport};

    fn drawn(kind: Kind, from: &str, to: &str, rid: &str, label: &str, at: (i64, i64)) -> Drawn {
        Drawn {
            key: format!("{rid}-{label}"),
            kind,
            from: Actor::new(from),
            to: Actor::new(to),
            transport: Transport::Internal,
            request_id: Some(RequestId(rid.into())),
            label: label.into(),
            sent_us: at.0,
            recv_us: Some(at.1),
            bytes: Some(100),
            status: None,
            connection: None,
            stream: None,
            detail: Detail::default(),
            server_phases: Vec::new(),
        }
    }

    #[test]
    fn round_trips_are_waits_in_a_row_and_loads_follow_their_requests() {
        let get = |rid: &str, at| {
            drawn(
                Kind::Request,
                "browser",
                "server",
                rid,
                "GET /api/rest/x",
                at,
            )
        };
        let answer = |rid: &str, at| drawn(Kind::Response, "server", "browser", rid, "200", at);
        let mut trace = vec![
            // Two at once, then one after the first answer: two round trips.
            get("1", (0, 5)),
            get("2", (1, 6)),
            answer("1", (10, 20)),
            answer("2", (11, 25)),
            get("3", (21, 30)),
            answer("3", (31, 40)),
            drawn(
                Kind::Request,
                "server",
                "db",
                "3-db1",
                "load user 1",
                (32, 32),
            ),
            drawn(
                Kind::Request,
                "server",
                "db",
                "9-db1",
                "another lane's",
                (32, 32),
            ),
        ];
        trace[2].detail.body = r#"{"id":1,"name":"Ada","tags":["a","b"]}"#.into();
        trace.push(Drawn {
            label: Lane::Rest.done_note(7),
            sent_us: 45,
            ..drawn(Kind::Work, "browser", "browser", "n", "", (45, 45))
        });
        let cost = lane_cost(&trace, Lane::Rest).unwrap();
        assert_eq!(cost.requests, 3);
        assert_eq!(cost.round_trips, 2);
        assert_eq!((cost.bytes_up, cost.bytes_down), (300, 300));
        assert_eq!(cost.fields_fetched, 4);
        assert_eq!(cost.fields_shown, Some(7));
        assert_eq!(cost.loads, 1);
        assert_eq!(cost.screen_us, Some(45));
        assert_eq!(lane_cost(&trace, Lane::Graphql), None);
    }
}

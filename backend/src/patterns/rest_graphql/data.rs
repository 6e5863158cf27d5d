//! The data both lanes read: a small social site (users, their posts, comments on them) made
//! once from fixed rules, and [`Db`], one request's way to it. Every load is drawn as a hop to
//! the `db` lifeline and takes [`LOAD_MS`]; a request's loads run one at a time, as they would
//! over one database connection, so a request that loads per item pays per item.

use std::sync::LazyLock;

use protocol::{
    pairing,
    rest_graphql::{Comment, POSTS_PER_USER, Post, USERS, User},
    trace::Kind,
};
use tokio::sync::Mutex;

use crate::trace::{Hop, Tracer};

/// How long one load takes.
pub const LOAD_MS: u64 = 4;
/// Loads one request may make: a query that needs more is refused.
pub const MAX_LOADS: u32 = 200;

const FIRST: [&str; 40] = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Dennis",
    "Frances",
    "John",
    "Radia",
    "Leslie",
    "Tony",
    "Niklaus",
    "Vint",
    "Bob",
    "Tim",
    "Adele",
    "Alan",
    "Jean",
    "Shafi",
    "Silvio",
    "Whitfield",
    "Martin",
    "Ron",
    "Adi",
    "Leonard",
    "Butler",
    "Sophie",
    "Roberta",
    "Anita",
    "Ivan",
    "Douglas",
    "John",
    "Katherine",
    "Hedy",
    "Evelyn",
    "Annie",
    "Lynn",
];
const LAST: [&str; 40] = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Ritchie",
    "Allen",
    "Backus",
    "Perlman",
    "Lamport",
    "Hoare",
    "Wirth",
    "Cerf",
    "Kahn",
    "Berners-Lee",
    "Goldberg",
    "Kay",
    "Sammet",
    "Goldwasser",
    "Micali",
    "Diffie",
    "Hellman",
    "Rivest",
    "Shamir",
    "Adleman",
    "Lampson",
    "Wilson",
    "Williams",
    "Borg",
    "Sutherland",
    "Engelbart",
    "McCarthy",
    "Johnson",
    "Lamarr",
    "Berezin",
    "Easley",
    "Conway",
];
const TOPICS: [&str; 12] = [
    "connection pools",
    "long polling",
    "idempotent retries",
    "HTTP/2 streams",
    "message queues",
    "cache invalidation",
    "backpressure",
    "load balancers",
    "WebSocket heartbeats",
    "rate limits",
    "DNS caching",
    "database indexes",
];
const TEMPLATES: [&str; 4] = [
    "What I learned about {}",
    "{} in production",
    "A short guide to {}",
    "Why {} surprised me",
];

/// The whole data set, made once.
pub struct Data {
    pub users: Vec<User>,
    pub posts: Vec<Post>,
    pub comments: Vec<Comment>,
}

/// Comments post `p` has: 0 to 6, from fixed rules (so a run can be repeated).
fn comments_on(p: u32) -> u32 {
    (p * 7 + p / 3) % 7
}

pub static DATA: LazyLock<Data> = LazyLock::new(|| {
    let users = (1..=USERS)
        .map(|id| {
            let i = (id - 1) as usize;
            let (first, last) = (FIRST[i], LAST[i]);
            let username = format!("{}{}", first.to_lowercase(), id);
            User {
                id,
                name: format!("{first} {last}"),
                email: format!("{username}@example.org"),
                bio: format!(
                    "{first} writes about {} and {}.",
                    TOPICS[i % TOPICS.len()],
                    TOPICS[(i * 5 + 3) % TOPICS.len()]
                ),
                avatar_url: format!("/avatars/{username}.png"),
                location: ["Lisbon", "Nairobi", "Osaka", "Toronto", "Tallinn"][i % 5].into(),
                website: format!("https://{username}.example.org"),
                joined: format!("20{:02}-{:02}-{:02}", 10 + i % 14, 1 + i % 12, 1 + i % 28),
                followers: (id * 37) % 500,
                following: (id * 11) % 90,
                username,
            }
        })
        .collect();
    let posts = (1..=USERS * POSTS_PER_USER)
        .map(|id| {
            let i = (id - 1) as usize;
            let topic = TOPICS[(i * 7) % TOPICS.len()];
            let title = capitalized(&TEMPLATES[i % TEMPLATES.len()].replace("{}", topic));
            Post {
                id,
                user_id: (id - 1) / POSTS_PER_USER + 1,
                body: format!(
                    "{title}. Notes from a week of working on {topic}: what broke first, what the \
                     logs said, and what we changed so that it would not break the same way again."
                ),
                title,
                tags: vec![topic.replace(' ', "-"), "backend".into()],
                created: format!("2026-{:02}-{:02}", 1 + i % 12, 1 + (i * 3) % 28),
                likes: (id * 13) % 120,
            }
        })
        .collect();
    let mut comments = Vec::new();
    for post in 1..=USERS * POSTS_PER_USER {
        for k in 0..comments_on(post) {
            let id = comments.len() as u32 + 1;
            comments.push(Comment {
                id,
                post_id: post,
                // Some commenters comment twice on one post: count and commenters differ.
                author_id: (post * 13 + (k / 2) * 7 + k % 2 * (k / 4) * 5) % USERS + 1,
                body: format!(
                    "Comment {} on post {post}: this matched what we saw too.",
                    k + 1
                ),
                created: format!("2026-{:02}-{:02}", 1 + post % 12, 1 + (post + k) % 28),
                likes: (id * 3) % 17,
            });
        }
    }
    Data {
        users,
        posts,
        comments,
    }
});

/// Why a load was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the request needed more than {MAX_LOADS} loads; ask for less")]
pub struct TooManyLoads;

/// One request's way to the data: its loads drawn on its run, one at a time.
pub struct Db {
    tracer: Tracer,
    /// Loads made so far; held while one runs, as a connection is.
    connection: Mutex<u32>,
}

impl Db {
    pub fn new(tracer: Tracer) -> Db {
        Db {
            tracer,
            connection: Mutex::new(0),
        }
    }

    /// One load: drawn as `what` to the `db` and its rows back, [`LOAD_MS`] long.
    async fn load<T>(
        &self,
        what: String,
        rows: impl FnOnce() -> Vec<T>,
    ) -> Result<Vec<T>, TooManyLoads> {
        let mut made = self.connection.lock().await;
        if *made >= MAX_LOADS {
            return Err(TooManyLoads);
        }
        *made += 1;
        let hop = format!("db{made}");
        self.tracer.record(|rid| {
            Hop::new(Kind::Request, "server", "db", pairing::hop(rid, &hop)).label(what)
        });
        tokio::time::sleep(std::time::Duration::from_millis(LOAD_MS)).await;
        let rows = rows();
        let n = rows.len();
        self.tracer.record(|rid| {
            Hop::new(Kind::Response, "db", "server", pairing::hop(rid, &hop))
                .label(format!("{n} row{}", if n == 1 { "" } else { "s" }))
        });
        Ok(rows)
    }

    pub async fn user(&self, id: u32) -> Result<Option<&'static User>, TooManyLoads> {
        let rows = self
            .load(format!("load user {id}"), || {
                DATA.users.iter().filter(|u| u.id == id).collect()
            })
            .await?;
        Ok(rows.into_iter().next())
    }

    /// The users of `ids` that exist, in one load.
    pub async fn users(&self, ids: &[u32]) -> Result<Vec<&'static User>, TooManyLoads> {
        self.load(format!("load users {}", list(ids)), || {
            DATA.users.iter().filter(|u| ids.contains(&u.id)).collect()
        })
        .await
    }

    /// The newest `limit` posts of `user`, newest first.
    pub async fn posts_of(
        &self,
        user: u32,
        limit: u32,
    ) -> Result<Vec<&'static Post>, TooManyLoads> {
        self.load(
            format!("load the newest {limit} posts of user {user}"),
            || {
                DATA.posts
                    .iter()
                    .rev()
                    .filter(|p| p.user_id == user)
                    .take(limit as usize)
                    .collect()
            },
        )
        .await
    }

    pub async fn comments_of(&self, post: u32) -> Result<Vec<&'static Comment>, TooManyLoads> {
        self.load(format!("load comments of post {post}"), || {
            DATA.comments.iter().filter(|c| c.post_id == post).collect()
        })
        .await
    }

    /// The comments of every post in `posts`, in one load.
    pub async fn comments_of_posts(
        &self,
        posts: &[u32],
    ) -> Result<Vec<&'static Comment>, TooManyLoads> {
        self.load(format!("load comments of posts {}", list(posts)), || {
            DATA.comments
                .iter()
                .filter(|c| posts.contains(&c.post_id))
                .collect()
        })
        .await
    }
}

/// `text` with its first letter in upper case.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `1, 2, 3`.
fn list(ids: &[u32]) -> String {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_set_has_every_kind_of_post() {
        assert_eq!(DATA.users.len(), USERS as usize);
        assert_eq!(DATA.posts.len(), (USERS * POSTS_PER_USER) as usize);
        let counts: Vec<u32> = (1..=USERS * POSTS_PER_USER).map(comments_on).collect();
        assert!(counts.contains(&0) && counts.contains(&6));
        // A post where one commenter commented twice.
        let twice = (1..=USERS * POSTS_PER_USER).any(|p| {
            let mut authors: Vec<u32> = DATA
                .comments
                .iter()
                .filter(|c| c.post_id == p)
                .map(|c| c.author_id)
                .collect();
            let n = authors.len();
            authors.sort_unstable();
            authors.dedup();
            authors.len() < n
        });
        assert!(twice);
        // Every comment's author exists.
        assert!(
            DATA.comments
                .iter()
                .all(|c| (1..=USERS).contains(&c.author_id))
        );
    }

    #[tokio::test]
    async fn loads_are_counted_and_bounded() {
        let db = Db::new(Tracer::new(&crate::trace::TraceHub::default(), None));
        assert_eq!(db.user(3).await.unwrap().unwrap().id, 3);
        assert!(db.user(USERS + 1).await.unwrap().is_none());
        assert_eq!(*db.connection.lock().await, 2);
        *db.connection.lock().await = MAX_LOADS;
        assert!(db.comments_of(1).await.is_err());
    }
}

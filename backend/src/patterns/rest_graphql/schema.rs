//! The GraphQL server of the demo (async-graphql): `user(id)` and what hangs off it: posts,
//! their comments, counts and commenters. Every resolver reads through the request's [`Db`], so
//! the loads it makes are drawn. Unbatched, each post's resolvers load per post and each
//! commenter per user: the N+1 moved inside the server. Batched, the resolvers ask the request's
//! DataLoaders, which gather the keys of one tick into one load.

use std::{collections::HashMap, sync::Arc, sync::LazyLock};

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, Object, Result, Schema,
    dataloader::{DataLoader, HashMapCache, Loader},
};
use protocol::rest_graphql::{Comment, MAX_POSTS, Post, USERS, User};

use super::data::{Db, TooManyLoads};

pub type ScreenSchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// Deepest query served (the screen's is 4).
pub const MAX_DEPTH: usize = 6;
/// Most fields one query may select, lists counted once (the screen's selects 8).
pub const MAX_COMPLEXITY: usize = 100;

/// The schema, built once.
pub static SCHEMA: LazyLock<ScreenSchema> = LazyLock::new(|| {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
});

/// What one GraphQL request's resolvers read through: its [`Db`], and (batched) its loaders.
pub struct Reads {
    db: Arc<Db>,
    batched: Option<Loaders>,
}

struct Loaders {
    comments: DataLoader<CommentsByPost, HashMapCache>,
    users: DataLoader<UsersById, HashMapCache>,
}

impl Reads {
    pub fn new(db: Arc<Db>, batch: bool) -> Reads {
        let batched = batch.then(|| Loaders {
            comments: DataLoader::with_cache(
                CommentsByPost(db.clone()),
                tokio::spawn,
                HashMapCache::default(),
            ),
            users: DataLoader::with_cache(
                UsersById(db.clone()),
                tokio::spawn,
                HashMapCache::default(),
            ),
        });
        Reads { db, batched }
    }

    async fn comments_of(&self, post: u32) -> Result<Vec<&'static Comment>> {
        Ok(match &self.batched {
            Some(l) => l.comments.load_one(post).await?.unwrap_or_default(),
            None => self.db.comments_of(post).await?,
        })
    }

    /// The users of `ids`, in that order: one load each, or one for all of them.
    async fn users(&self, ids: &[u32]) -> Result<Vec<&'static User>> {
        match &self.batched {
            Some(l) => {
                let found = l.users.load_many(ids.iter().copied()).await?;
                Ok(ids.iter().filter_map(|id| found.get(id).copied()).collect())
            }
            None => {
                let mut users = Vec::with_capacity(ids.len());
                for &id in ids {
                    users.extend(self.db.user(id).await?);
                }
                Ok(users)
            }
        }
    }
}

/// Comments by post id, for a batch of posts in one load.
struct CommentsByPost(Arc<Db>);

impl Loader<u32> for CommentsByPost {
    type Value = Vec<&'static Comment>;
    type Error = Arc<TooManyLoads>;

    async fn load(&self, posts: &[u32]) -> Result<HashMap<u32, Self::Value>, Self::Error> {
        let mut by_post: HashMap<u32, Self::Value> =
            posts.iter().map(|&p| (p, Vec::new())).collect();
        for comment in self.0.comments_of_posts(posts).await.map_err(Arc::new)? {
            by_post.entry(comment.post_id).or_default().push(comment);
        }
        Ok(by_post)
    }
}

/// Users by id, for a batch of ids in one load.
struct UsersById(Arc<Db>);

impl Loader<u32> for UsersById {
    type Value = &'static User;
    type Error = Arc<TooManyLoads>;

    async fn load(&self, ids: &[u32]) -> Result<HashMap<u32, Self::Value>, Self::Error> {
        let users = self.0.users(ids).await.map_err(Arc::new)?;
        Ok(users.into_iter().map(|u| (u.id, u)).collect())
    }
}

fn reads<'a>(ctx: &Context<'a>) -> &'a Reads {
    ctx.data_unchecked::<Reads>()
}

pub struct Query;

#[Object]
impl Query {
    /// A user by id (1 to 40).
    async fn user(&self, ctx: &Context<'_>, id: i32) -> Result<UserNode> {
        let found = match u32::try_from(id) {
            Ok(id) if (1..=USERS).contains(&id) => reads(ctx).db.user(id).await?,
            _ => None,
        };
        found
            .map(UserNode)
            .ok_or_else(|| format!("no user {id}: ids are 1 to {USERS}").into())
    }
}

/// A user, every field a REST answer carries, and their posts.
pub struct UserNode(&'static User);

#[Object(name = "User")]
impl UserNode {
    async fn id(&self) -> u32 {
        self.0.id
    }
    async fn username(&self) -> &str {
        &self.0.username
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn bio(&self) -> &str {
        &self.0.bio
    }
    async fn avatar_url(&self) -> &str {
        &self.0.avatar_url
    }
    async fn location(&self) -> &str {
        &self.0.location
    }
    async fn website(&self) -> &str {
        &self.0.website
    }
    async fn joined(&self) -> &str {
        &self.0.joined
    }
    async fn followers(&self) -> u32 {
        self.0.followers
    }
    async fn following(&self) -> u32 {
        self.0.following
    }
    /// Their newest `last` posts (1 to 8), newest first.
    async fn posts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 5)] last: i32,
    ) -> Result<Vec<PostNode>> {
        let last = u32::try_from(last)
            .ok()
            .filter(|n| (1..=MAX_POSTS).contains(n))
            .ok_or_else(|| format!("posts(last:) must be 1 to {MAX_POSTS}, got {last}"))?;
        let posts = reads(ctx).db.posts_of(self.0.id, last).await?;
        Ok(posts.into_iter().map(PostNode).collect())
    }
}

/// A post, its comments, their count and their distinct authors.
pub struct PostNode(&'static Post);

#[Object(name = "Post")]
impl PostNode {
    async fn id(&self) -> u32 {
        self.0.id
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    async fn tags(&self) -> &[String] {
        &self.0.tags
    }
    async fn created(&self) -> &str {
        &self.0.created
    }
    async fn likes(&self) -> u32 {
        self.0.likes
    }
    async fn comment_count(&self, ctx: &Context<'_>) -> Result<u32> {
        Ok(reads(ctx).comments_of(self.0.id).await?.len() as u32)
    }
    async fn comments(&self, ctx: &Context<'_>) -> Result<Vec<CommentNode>> {
        let comments = reads(ctx).comments_of(self.0.id).await?;
        Ok(comments.into_iter().map(CommentNode).collect())
    }
    /// The users who commented, each once, in the order of their first comment.
    async fn commenters(&self, ctx: &Context<'_>) -> Result<Vec<UserNode>> {
        let reads = reads(ctx);
        let mut ids: Vec<u32> = Vec::new();
        for comment in reads.comments_of(self.0.id).await? {
            if !ids.contains(&comment.author_id) {
                ids.push(comment.author_id);
            }
        }
        Ok(reads.users(&ids).await?.into_iter().map(UserNode).collect())
    }
}

pub struct CommentNode(&'static Comment);

#[Object(name = "Comment")]
impl CommentNode {
    async fn id(&self) -> u32 {
        self.0.id
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    async fn created(&self) -> &str {
        &self.0.created
    }
    async fn likes(&self) -> u32 {
        self.0.likes
    }
    async fn author(&self, ctx: &Context<'_>) -> Result<UserNode> {
        let found = reads(ctx).users(&[self.0.author_id]).await?;
        found
            .into_iter()
            .next()
            .map(UserNode)
            .ok_or_else(|| "the comment's author is gone".into())
    }
}

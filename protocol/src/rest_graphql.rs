//! The REST vs GraphQL demo's wire types: the REST resources as a REST API serves them (whole,
//! every field, whatever the screen needs), the GraphQL request, and the one screen both lanes
//! fill: a user, their latest posts, each post's comment count and the names of its commenters.

use serde::{Deserialize, Serialize};

/// Users in the demo's data set (ids 1 to this).
pub const USERS: u32 = 40;
/// Posts each user has written.
pub const POSTS_PER_USER: u32 = 8;
/// The most posts one screen (or `/posts?limit=`) may ask for.
pub const MAX_POSTS: u32 = POSTS_PER_USER;
/// The largest GraphQL request body, in bytes.
pub const MAX_GRAPHQL_BYTES: usize = 8 * 1024;

/// `GET /api/rest/users/{id}`: a user, as a REST API returns one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: u32,
    pub username: String,
    pub name: String,
    pub email: String,
    pub bio: String,
    pub avatar_url: String,
    pub location: String,
    pub website: String,
    pub joined: String,
    pub followers: u32,
    pub following: u32,
}

/// `GET /api/rest/users/{id}/posts`: one post, as a REST API returns one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Post {
    pub id: u32,
    pub user_id: u32,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    pub created: String,
    pub likes: u32,
}

/// `GET /api/rest/posts/{id}/comments`: one comment, as a REST API returns one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Comment {
    pub id: u32,
    pub post_id: u32,
    pub author_id: u32,
    pub body: String,
    pub created: String,
    pub likes: u32,
}

/// The query of a GraphQL call: whether its resolvers batch. (How far away the server is, is
/// the run's link, `?link=`, as for every demo.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct BatchQuery {
    /// Batch the resolvers' loads (DataLoader) instead of one query per item.
    #[serde(default)]
    pub batch: bool,
}

/// `GET /api/rest/users/{id}/posts?limit=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct PostsQuery {
    /// The newest this many posts, 1 to [`MAX_POSTS`].
    #[serde(default = "default_posts")]
    pub limit: u32,
}

pub fn default_posts() -> u32 {
    5
}

/// `POST /api/graphql`: a GraphQL request, as GraphQL over HTTP carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GraphqlRequest {
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub variables: Option<serde_json::Value>,
    #[serde(
        default,
        rename = "operationName",
        skip_serializing_if = "Option::is_none"
    )]
    pub operation_name: Option<String>,
}

/// The query the page's GraphQL lane sends: exactly the screen's fields.
pub const SCREEN_QUERY: &str = "query Screen($user: Int!, $posts: Int!) {
  user(id: $user) {
    name
    username
    posts(last: $posts) {
      title
      commentCount
      commenters { name }
    }
  }
}";

/// The screen both lanes fill, and what GraphQL answers to [`SCREEN_QUERY`] (`data`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Screen {
    pub user: ScreenUser,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenUser {
    pub name: String,
    pub username: String,
    pub posts: Vec<ScreenPost>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScreenPost {
    pub title: String,
    pub comment_count: u32,
    pub commenters: Vec<Named>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    pub name: String,
}

impl Screen {
    /// The fields the screen shows: a name and a username, then per post its title, its
    /// comment count and each commenter's name.
    pub fn fields(&self) -> usize {
        2 + self
            .user
            .posts
            .iter()
            .map(|p| 2 + p.commenters.len())
            .sum::<usize>()
    }
}

/// GraphQL's answer to [`SCREEN_QUERY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenAnswer {
    pub data: Screen,
}

/// How many leaf values (strings, numbers, booleans, nulls) a JSON value holds: the fields an
/// answer carried, whether the screen uses them or not.
pub fn leaf_fields(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Object(map) => map.values().map(leaf_fields).sum(),
        serde_json::Value::Array(items) => items.iter().map(leaf_fields).sum(),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_count_leaves_and_the_screens_own() {
        let value = serde_json::json!({"a": 1, "b": [1, 2, {"c": "x"}], "d": {"e": null}});
        assert_eq!(leaf_fields(&value), 5);
        let screen = Screen {
            user: ScreenUser {
                name: "Ada".into(),
                username: "ada".into(),
                posts: vec![ScreenPost {
                    title: "t".into(),
                    comment_count: 3,
                    commenters: vec![Named {
                        name: "Grace".into(),
                    }],
                }],
            },
        };
        assert_eq!(screen.fields(), 5);
    }
}

//! The REST vs GraphQL demo: the same data served two ways. REST: a resource per URL, each
//! answered whole (`/api/rest/users/{id}`, `/users/{id}/posts`, `/posts/{id}/comments`), so a
//! screen needs one call per thing it shows. GraphQL: one `POST /api/graphql` answered by a
//! real GraphQL server ([`schema`]) with exactly the fields asked for; its resolvers' loads are
//! drawn inside the server ([`data::Db`]), batched or not.
//!
//! A run over a slow link (`?link=3g`, [`crate::link`], as for every demo) pays the link's
//! round trip for each call, so the cost of each extra round trip shows on a local machine too.

pub(crate) mod data;
pub(crate) mod schema;

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use protocol::{
    ApiError,
    rest_graphql::{
        BatchQuery, Comment, GraphqlRequest, MAX_GRAPHQL_BYTES, MAX_POSTS, Post, PostsQuery, USERS,
        User,
    },
};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use self::data::{Db, TooManyLoads};
use crate::{
    AppState,
    error::AppError,
    extract::{AppJson, AppQuery},
    server::rate_limit::Client,
    trace::{Phases, TraceIds, Tracer},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rest_user))
        .routes(routes!(rest_posts))
        .routes(routes!(rest_comments))
        .routes(routes!(graphql))
}

impl From<TooManyLoads> for AppError {
    fn from(e: TooManyLoads) -> AppError {
        AppError::Unprocessable(e.to_string())
    }
}

/// An id from the path: a number, else 400.
fn id_in_path(what: &str, id: &str) -> Result<u32, AppError> {
    id.parse()
        .map_err(|_| AppError::BadRequest(format!("{what} id must be a number, got {id:?}")))
}

/// No user `id`: a 404 naming the ids there are.
fn no_user(id: u32) -> AppError {
    AppError::NotFound(format!("no user {id}: ids are 1 to {USERS}"))
}

/// A REST answer: one load through the request's [`Db`] (drawn on its run), timed as the
/// `load` phase.
async fn loaded<T: Serialize>(
    state: &AppState,
    trace: Option<TraceIds>,
    load: impl AsyncFnOnce(&Db) -> Result<T, AppError>,
) -> Result<Response, AppError> {
    let db = Db::new(Tracer::new(&state.trace, trace));
    let mut phases = Phases::default();
    let value = phases.time_async("load", load(&db)).await?;
    Ok(phases.attach(Json(value).into_response()))
}

#[utoipa::path(get, path = "/rest/users/{id}", tag = "rest-graphql",
    params(("id" = u32, Path, description = "A user id, 1 to 40")),
    responses((status = 200, description = "The user, every field", body = User),
        (status = 400, description = "The id is not a number", body = ApiError), (status = 404, description = "No such user", body = ApiError)))]
async fn rest_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    trace: Option<TraceIds>,
) -> Result<Response, AppError> {
    let id = id_in_path("user", &id)?;
    loaded(&state, trace, async |db: &Db| {
        db.user(id).await?.ok_or_else(|| no_user(id))
    })
    .await
}

#[utoipa::path(get, path = "/rest/users/{id}/posts", tag = "rest-graphql",
    params(("id" = u32, Path, description = "A user id, 1 to 40"), PostsQuery),
    responses((status = 200, description = "The user's newest posts, every field of each", body = Vec<Post>),
        (status = 400, description = "The id is not a number", body = ApiError), (status = 404, description = "No such user", body = ApiError),
        (status = 422, description = "limit out of range", body = ApiError)))]
async fn rest_posts(
    State(state): State<AppState>,
    Path(id): Path<String>,
    trace: Option<TraceIds>,
    posts: Result<AppQuery<PostsQuery>, AppError>,
) -> Result<Response, AppError> {
    let AppQuery(PostsQuery { limit }) = posts?;
    if !(1..=MAX_POSTS).contains(&limit) {
        return Err(AppError::Unprocessable(format!(
            "limit must be 1 to {MAX_POSTS}, got {limit}"
        )));
    }
    let id = id_in_path("user", &id)?;
    if !(1..=USERS).contains(&id) {
        return Err(no_user(id));
    }
    loaded(&state, trace, async |db: &Db| {
        Ok(db.posts_of(id, limit).await?)
    })
    .await
}

#[utoipa::path(get, path = "/rest/posts/{id}/comments", tag = "rest-graphql",
    params(("id" = u32, Path, description = "A post id")),
    responses((status = 200, description = "The post's comments, every field of each", body = Vec<Comment>),
        (status = 400, description = "The id is not a number", body = ApiError), (status = 404, description = "No such post", body = ApiError)))]
async fn rest_comments(
    State(state): State<AppState>,
    Path(id): Path<String>,
    trace: Option<TraceIds>,
) -> Result<Response, AppError> {
    let id = id_in_path("post", &id)?;
    if !(1..=data::DATA.posts.len() as u32).contains(&id) {
        return Err(AppError::NotFound(format!("no post {id}")));
    }
    loaded(&state, trace, async |db: &Db| {
        Ok(db.comments_of(id).await?)
    })
    .await
}

/// A GraphQL request refused: `error` as every API error has it, and GraphQL's own `errors`
/// (with their locations and paths) beside it.
#[derive(Serialize)]
struct Refused {
    error: String,
    errors: Vec<async_graphql::ServerError>,
}

#[utoipa::path(post, path = "/graphql", tag = "rest-graphql",
    params(BatchQuery), request_body = GraphqlRequest,
    description = "A GraphQL query over the demo's data (`user(id)` → `posts(last)` → `commentCount`, `comments`, `commenters`). With `batch=true` the resolvers load through DataLoaders. A query that does not parse, validate or resolve is a 400 whose body has `error` and GraphQL's `errors`.",
    responses((status = 200, description = "GraphQL's answer: `data`", content_type = "application/json"),
        (status = 400, description = "Malformed JSON, or a query that does not parse, validate (depth 6, complexity 100) or resolve", body = ApiError),
        (status = 413, description = "A query over 8 KiB", body = ApiError), (status = 415, description = "Content-Type is not application/json", body = ApiError),
        (status = 422, description = "Wrong field types", body = ApiError), (status = 429, description = "Over the job rate (Retry-After)", body = ApiError)))]
async fn graphql(
    State(state): State<AppState>,
    Client(client): Client,
    trace: Option<TraceIds>,
    query: Result<AppQuery<BatchQuery>, AppError>,
    body: Result<AppJson<GraphqlRequest>, AppError>,
) -> Result<Response, AppError> {
    // A query may cost up to `MAX_LOADS` loads: counted as a job, not as a plain GET.
    state.job_rate.check(client)?;
    let AppQuery(BatchQuery { batch }) = query?;
    let AppJson(request) = body?;
    if request.query.len() > MAX_GRAPHQL_BYTES {
        return Err(AppError::PayloadTooLarge(format!(
            "a query is at most {MAX_GRAPHQL_BYTES} bytes, this one is {}",
            request.query.len()
        )));
    }
    let db = Arc::new(Db::new(Tracer::new(&state.trace, trace)));
    let mut executed = async_graphql::Request::new(request.query)
        .variables(async_graphql::Variables::from_json(
            request.variables.unwrap_or_default(),
        ))
        .data(schema::Reads::new(db, batch));
    if let Some(name) = request.operation_name {
        executed = executed.operation_name(name);
    }
    let mut phases = Phases::default();
    let response = phases
        .time_async("resolve", schema::SCHEMA.execute(executed))
        .await;
    if !response.errors.is_empty() {
        let error = response.errors[0].message.clone();
        let refused = Refused {
            error,
            errors: response.errors,
        };
        return Ok((StatusCode::BAD_REQUEST, Json(refused)).into_response());
    }
    Ok(phases.attach(Json(response).into_response()))
}

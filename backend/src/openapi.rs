//! The OpenAPI 3.1 description of every HTTP endpoint, served at `GET /api/openapi.json`. Each
//! route is registered with its handler's `#[utoipa::path]` description (utoipa-axum's
//! `OpenApiRouter` and `routes!`, in each module's `router()`), so no list of handlers is kept
//! here; this module holds what every operation shares and the document's own parts.
//! WebSocket and event-stream endpoints are described by their upgrade or stream `GET`, with
//! query parameters and the answers they can give.

use std::sync::LazyLock;

use axum::{
    extract::State,
    http::{Method, header},
    response::IntoResponse,
    routing::MethodRouter,
};
use protocol::ApiError;
use utoipa::{
    OpenApi,
    openapi::{
        self, Required, path::Operation, path::ParameterBuilder, path::ParameterIn,
        response::ResponseBuilder,
    },
};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::{AppState, server::cross_site};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Patternscope",
        description = "Real endpoints for every communication-pattern demo, and the trace hub. \
            Every error is a 4xx/5xx with a JSON body `{ \"error\": \"...\" }`; a wrong method \
            is a 405 in the same shape."
    ),
    components(schemas(
        ApiError,
        protocol::trace::TraceClientMsg,
        protocol::trace::TraceServerMsg,
        protocol::push::ClientFrame,
        protocol::push::ServerFrame,
        protocol::pubsub::SubscriberFrame,
        protocol::pubsub::BrokerFrame,
        protocol::pubsub::Delivery,
    ))
)]
pub(crate) struct ApiDoc;

/// A documented handler served at `path` by `method_router` rather than as its description
/// says: a WebSocket upgrade (GET, or CONNECT over HTTP/2, which OpenAPI cannot name) or a
/// catch-all (`{*path}`, which OpenAPI writes `{path}`). The description is kept as it is.
pub(crate) fn served_as<S: Clone + Send + Sync + 'static>(
    (schemas, paths, _): UtoipaMethodRouter<S>,
    path: &str,
    method_router: MethodRouter<S>,
) -> OpenApiRouter<S> {
    let mut doc = openapi::OpenApi::default();
    doc.paths = paths;
    doc.components = Some(
        openapi::ComponentsBuilder::new()
            .schemas_from_iter(schemas)
            .build(),
    );
    OpenApiRouter::with_openapi(doc).route(path, method_router)
}

/// `doc` (the routers' descriptions) with what applies to every operation added: the optional
/// `run`/`rid` parameters and the 400 a malformed one gets, the 429 any request can get, and
/// the 403 a cross-site request to a guarded route gets.
pub(crate) fn finish(mut doc: openapi::OpenApi) -> openapi::OpenApi {
    for (path, item) in doc.paths.paths.iter_mut() {
        // The benchmarks' baseline is never traced: it reads no `run`/`rid`.
        let traced = path != "/api/bench/bare";
        for op in operations(item) {
            if traced {
                add_run_params(op);
            }
            add_too_many(op);
        }
        for (method, op) in [
            (Method::GET, &mut item.get),
            (Method::PUT, &mut item.put),
            (Method::POST, &mut item.post),
            (Method::DELETE, &mut item.delete),
            (Method::PATCH, &mut item.patch),
        ] {
            if let Some(op) = op.as_mut().filter(|_| cross_site::guarded(&method, path)) {
                op.responses
                    .responses
                    .entry("403".into())
                    .or_insert_with(|| {
                        json_error(
                            "A cross-site request: `Sec-Fetch-Site` or `Origin` names another                              site (only this server's pages, or clients that send neither)",
                        )
                    });
            }
        }
    }
    doc
}

/// Any request can be refused with a 429 (`connections`: too many connections from one client);
/// job creations and publishes also have a per-client rate (`rate_limit`), and what a request
/// makes in a server-wide store counts against the client's share of it (`expiring`). Every
/// 429, an operation's own included, carries `Retry-After`.
fn add_too_many(op: &mut Operation) {
    let too_many = op
        .responses
        .responses
        .entry("429".into())
        .or_insert_with(|| {
            json_error(
                "Too many connections from this client, or (job creations, publishes) too \
                 many requests per second; `Retry-After` says when to try again",
            )
        });
    if let openapi::RefOr::T(response) = too_many {
        response.headers.insert(
            "Retry-After".into(),
            openapi::HeaderBuilder::new()
                .schema(
                    openapi::ObjectBuilder::new()
                        .schema_type(openapi::schema::Type::Integer)
                        .minimum(Some(1)),
                )
                .description(Some(
                    "Whole seconds to wait, at least 1: until the client's rate refills, or \
                     until its oldest entry in the store expires (5 when what holds the room \
                     is in use and has no expiry)",
                ))
                .build(),
        );
    }
}

/// Every operation of a path item.
pub fn operations(item: &mut openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn add_run_params(op: &mut Operation) {
    let params = op.parameters.get_or_insert_with(Vec::new);
    for (name, what, pattern) in [
        (
            "run",
            "Run id: 1 to 64 characters of A-Z a-z 0-9 - _",
            "^[A-Za-z0-9_-]{1,64}$",
        ),
        (
            "rid",
            "Request id, unique within the run",
            "^[A-Za-z0-9_-]{1,64}$",
        ),
    ] {
        if !params.iter().any(|p| p.name == name) {
            params.push(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(what))
                    .schema(Some(
                        openapi::ObjectBuilder::new()
                            .schema_type(openapi::schema::Type::String)
                            .pattern(Some(pattern)),
                    ))
                    .build(),
            );
        }
    }
    op.responses
        .responses
        .entry("400".into())
        .or_insert_with(|| json_error("A malformed `run` or `rid`"));
}

/// A response with the JSON `{ "error": … }` body.
fn json_error(description: &str) -> openapi::RefOr<openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            openapi::ContentBuilder::new()
                .schema(Some(openapi::Ref::from_schema_name("ApiError")))
                .build(),
        )
        .build()
        .into()
}

/// The description without and with the debug routes ([`crate::Config::debug_routes`]).
static SPEC_JSON: [LazyLock<String>; 2] = [
    LazyLock::new(|| spec_json(false)),
    LazyLock::new(|| spec_json(true)),
];

fn spec_json(debug_routes: bool) -> String {
    crate::openapi_spec(debug_routes)
        .to_pretty_json()
        .expect("the description serializes")
}

/// `GET /api/openapi.json`.
#[utoipa::path(get, path = "/openapi.json", tag = "server",
    responses((status = 200, description = "This description", content_type = "application/json", body = Object)))]
pub async fn serve(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        SPEC_JSON[usize::from(state.config.debug_routes)].as_str(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_documents_its_errors_as_json() {
        let doc = crate::openapi_spec(true);
        assert!(doc.paths.paths.len() > 25, "{}", doc.paths.paths.len());
        for (path, item) in doc.paths.paths.clone().iter_mut() {
            for op in operations(item) {
                for (code, response) in &op.responses.responses {
                    let openapi::RefOr::T(response) = response else {
                        continue;
                    };
                    if code.starts_with('4') || code.starts_with('5') {
                        assert!(
                            response.content.contains_key("application/json"),
                            "{path} {code}: an error without the JSON body"
                        );
                    }
                }
            }
        }
    }
}

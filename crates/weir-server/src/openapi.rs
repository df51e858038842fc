//! The OpenAPI 3.1 document served at `/api/openapi.json`, built by `aide` from the one route
//! registration in [`crate::routes`]: each handler's extractors and return type describe
//! its parameters, body, answers and permission, over the schemars types of
//! [`weir_core::api`]. This module holds how the server's own extractors and answers
//! describe themselves, and the finishing pass (path parameters, the security scheme).

use crate::error::ApiError;
use crate::extract::{Json, OptionalJson, Path, Query};
use crate::state::AppState;
use aide::axum::ApiRouter;
use aide::generate::{GenContext, in_context};
use aide::openapi::{
    Info, MediaType, OpenApi, Operation, RequestBody, Response, SchemaObject, StatusCode,
};
use aide::operation::{ParamLocation, add_parameters, parameters_from_schema, set_body};
use aide::{OperationInput, OperationOutput};
use axum::Router;
use axum::response::IntoResponse;
use bytes::Bytes;
use indexmap::IndexMap;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Value, json};
use weir_core::api::ErrorBody;

/// Prepares the generator: JSON Schema 2020-12 (OpenAPI 3.1's dialect), shared definitions
/// under `#/components/schemas`. Call before registering routes.
pub(crate) fn begin() {
    aide::generate::reset_context();
    aide::generate::infer_responses(true);
    in_context(|ctx| {
        ctx.schema = SchemaGenerator::new(SchemaSettings::draft2020_12().with(|s| {
            s.definitions_path = "#/components/schemas/".into();
            s.transforms
                .push(Box::new(schemars::transform::RecursiveTransform(
                    integer_bounds as fn(&mut schemars::Schema),
                )));
        }));
    });
}

/// Gives fixed-width integers the bounds of their Rust type (schemars names the width in
/// `format` only), so a number the server cannot hold is outside the documented range.
fn integer_bounds(schema: &mut schemars::Schema) {
    let (min, max): (Value, Value) = match schema.get("format").and_then(Value::as_str) {
        Some("uint32") => (json!(0), json!(u32::MAX)),
        Some("uint64" | "uint") => (json!(0), json!(u64::MAX)),
        Some("int32") => (json!(i32::MIN), json!(i32::MAX)),
        Some("int64") => (json!(i64::MIN), json!(i64::MAX)),
        _ => return,
    };
    if let Some(o) = schema.as_object_mut() {
        o.entry("minimum").or_insert(min);
        o.entry("maximum").or_insert(max);
    }
}

/// Turns the registered routes into the router and the serialised document.
pub(crate) fn finish(api: ApiRouter<AppState>) -> (Router<AppState>, Bytes) {
    let mut doc = OpenApi {
        info: Info {
            title: "Weir API".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: Some(
                "Every error answers `ErrorBody`. Operations with `x-weir-permission` need \
                 `Authorization: Bearer <key or run token>`; `checked: role` means the key's \
                 role must grant it, `checked: run` that it is checked on the run named."
                    .into(),
            ),
            ..Info::default()
        },
        ..OpenApi::default()
    };
    let router = api.finish_api(&mut doc);
    let mut value = serde_json::to_value(&doc).unwrap_or_default();
    value["openapi"] = json!("3.1.0");
    value["components"]["securitySchemes"] =
        json!({"bearer": {"type": "http", "scheme": "bearer"}});
    if let Some(paths) = value.get_mut("paths").and_then(Value::as_object_mut) {
        let schemas = doc.components.as_ref().map(|c| &c.schemas);
        for (template, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for op in item.values_mut() {
                path_parameters(template, op, schemas);
            }
        }
    }
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    // The generator's copy of every schema is no longer needed: free it (it lives in a
    // thread-local of the thread that built the routes, for the life of the process).
    aide::generate::reset_context();
    (router, Bytes::from(bytes))
}

/// Replaces the `x-weir-path` schema a [`Path`] extractor left on `op` with one parameter per
/// `{name}` of the template: a tuple's items in order, a struct's fields by name, or the one
/// scalar.
fn path_parameters(
    template: &str,
    op: &mut Value,
    schemas: Option<&IndexMap<String, SchemaObject>>,
) {
    let Some(schema) = op.as_object_mut().and_then(|o| o.remove("x-weir-path")) else {
        return;
    };
    let schema = match schema["$ref"].as_str() {
        Some(r) => schemas
            .and_then(|s| s.get(r.trim_start_matches("#/components/schemas/")))
            .map(|s| s.json_schema.as_value().clone())
            .unwrap_or(schema),
        None => schema,
    };
    let names: Vec<&str> = template
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect();
    let params: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let one = if let Some(items) = schema["prefixItems"].as_array() {
                items.get(i).cloned()
            } else if let Some(props) = schema["properties"].as_object() {
                props.get(*name).cloned()
            } else {
                Some(schema.clone())
            };
            json!({"name": name, "in": "path", "required": true,
                   "schema": one.unwrap_or(json!({"type": "string"}))})
        })
        .collect();
    let existing = op["parameters"].as_array().cloned().unwrap_or_default();
    op["parameters"] = Value::Array(params.into_iter().chain(existing).collect());
}

/// A response carrying [`ErrorBody`], for status `code`.
pub(crate) fn error_response(
    ctx: &mut GenContext,
    code: u16,
    description: &str,
) -> (Option<StatusCode>, Response) {
    (
        Some(StatusCode::Code(code)),
        json_response::<ErrorBody>(ctx, description),
    )
}

fn json_response<T: JsonSchema>(ctx: &mut GenContext, description: &str) -> Response {
    media_response(
        ctx.schema.subschema_for::<T>(),
        "application/json",
        description,
    )
}

fn media_response(schema: schemars::Schema, media: &str, description: &str) -> Response {
    Response {
        description: description.into(),
        content: IndexMap::from_iter([(
            media.into(),
            MediaType {
                schema: Some(SchemaObject {
                    json_schema: schema,
                    example: None,
                    external_docs: None,
                }),
                ..Default::default()
            },
        )]),
        ..Default::default()
    }
}

fn json_body<T: JsonSchema>(ctx: &mut GenContext, operation: &mut Operation, required: bool) {
    let schema = ctx.schema.subschema_for::<T>();
    let body = RequestBody {
        description: None,
        content: IndexMap::from_iter([(
            "application/json".into(),
            MediaType {
                schema: Some(SchemaObject {
                    json_schema: schema,
                    example: None,
                    external_docs: None,
                }),
                ..Default::default()
            },
        )]),
        required,
        extensions: IndexMap::default(),
    };
    set_body(ctx, operation, body);
}

fn body_errors(ctx: &mut GenContext) -> Vec<(Option<StatusCode>, Response)> {
    vec![
        error_response(
            ctx,
            400,
            "The body is malformed or invalid; `field` names the part",
        ),
        error_response(ctx, 413, "The body is larger than the server accepts"),
    ]
}

impl<T: JsonSchema> OperationInput for Json<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        json_body::<T>(ctx, operation, true);
    }

    fn inferred_early_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        body_errors(ctx)
    }
}

impl<T: JsonSchema> OperationInput for OptionalJson<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        json_body::<T>(ctx, operation, false);
    }

    fn inferred_early_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        body_errors(ctx)
    }
}

impl<T: JsonSchema> OperationInput for Query<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        let schema = ctx.schema.subschema_for::<T>();
        let params = parameters_from_schema(ctx, schema, ParamLocation::Query);
        add_parameters(ctx, operation, params);
    }

    fn inferred_early_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        vec![error_response(
            ctx,
            400,
            "A query parameter is invalid; `field` names it",
        )]
    }
}

impl<T: JsonSchema> OperationInput for Path<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        // Named from the route template when the document is finished.
        let schema = ctx.schema.subschema_for::<T>();
        operation
            .extensions
            .insert("x-weir-path".into(), schema.to_value());
    }

    fn inferred_early_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        vec![
            error_response(ctx, 400, "A path parameter is malformed; `field` names it"),
            error_response(ctx, 404, "Not found, or not visible to the caller"),
        ]
    }
}

impl OperationOutput for ApiError {
    type Inner = ErrorBody;

    fn inferred_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        vec![
            error_response(ctx, 404, "Something the request names does not exist"),
            error_response(
                ctx,
                409,
                "Refused by the orchestration rules in the current state",
            ),
            error_response(ctx, 500, "Stored data is corrupt; a retry will not mend it"),
            error_response(ctx, 503, "The database is unavailable; retry shortly"),
        ]
    }
}

/// A JSON answer with status 201 Created.
pub struct Created<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> axum::response::Response {
        (axum::http::StatusCode::CREATED, axum::Json(self.0)).into_response()
    }
}

impl<T: JsonSchema> OperationOutput for Created<T> {
    type Inner = T;

    fn inferred_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        vec![(
            Some(StatusCode::Code(201)),
            json_response::<T>(ctx, "Created"),
        )]
    }
}

/// A JSON answer that is 201 when the request created it and 200 when it already existed
/// (idempotent creation).
pub struct MaybeCreated<T> {
    /// Whether this request created it.
    pub created: bool,
    /// The thing, new or existing.
    pub body: T,
}

impl<T: serde::Serialize> IntoResponse for MaybeCreated<T> {
    fn into_response(self) -> axum::response::Response {
        let status = if self.created {
            axum::http::StatusCode::CREATED
        } else {
            axum::http::StatusCode::OK
        };
        (status, axum::Json(self.body)).into_response()
    }
}

impl<T: JsonSchema> OperationOutput for MaybeCreated<T> {
    type Inner = T;

    fn inferred_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        vec![
            (
                Some(StatusCode::Code(200)),
                json_response::<T>(ctx, "It already existed"),
            ),
            (
                Some(StatusCode::Code(201)),
                json_response::<T>(ctx, "Created"),
            ),
        ]
    }
}

/// A `text/event-stream` answer (server-sent events).
pub struct EventStream(pub axum::response::Response);

impl IntoResponse for EventStream {
    fn into_response(self) -> axum::response::Response {
        self.0
    }
}

impl OperationOutput for EventStream {
    type Inner = ();

    fn inferred_responses(
        _: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        // Each event: `state` (data: the run as JSON, `FlowRun`), `log` (data: a log line as
        // JSON, `LogLine`, with its sequence number as id), then one `end` (data: the final
        // state's name).
        let schema = schemars::json_schema!({
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"enum": ["state", "log", "end"]},
                "data": {"type": "string"},
                "id": {"type": "string"},
            },
        });
        vec![(
            Some(StatusCode::Code(200)),
            media_response(
                schema,
                "text/event-stream",
                "Events `state` (the run as JSON), `log` (a log line as JSON), then `end`",
            ),
        )]
    }
}

/// A Prometheus text-format answer.
pub struct PrometheusText(pub axum::response::Response);

impl IntoResponse for PrometheusText {
    fn into_response(self) -> axum::response::Response {
        self.0
    }
}

impl OperationOutput for PrometheusText {
    type Inner = ();

    fn inferred_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        let schema = schemars::json_schema!({"type": "string"});
        vec![
            (
                Some(StatusCode::Code(200)),
                media_response(schema, "text/plain", "Prometheus text format"),
            ),
            error_response(ctx, 503, "The metrics recorder is unavailable"),
        ]
    }
}

/// The serialised document, handed to [`document`] as a request extension.
#[derive(Clone)]
pub(crate) struct Document(pub Bytes);

/// The document as an answer.
pub(crate) struct DocumentJson(Bytes);

impl IntoResponse for DocumentJson {
    fn into_response(self) -> axum::response::Response {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.0,
        )
            .into_response()
    }
}

impl OperationOutput for DocumentJson {
    type Inner = ();

    fn inferred_responses(
        _: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<StatusCode>, Response)> {
        let schema = schemars::json_schema!({"type": "object"});
        vec![(
            Some(StatusCode::Code(200)),
            media_response(schema, "application/json", "This OpenAPI 3.1 document"),
        )]
    }
}

/// `GET /api/openapi.json`.
pub(crate) async fn document(
    axum::Extension(Document(doc)): axum::Extension<Document>,
) -> DocumentJson {
    DocumentJson(doc)
}

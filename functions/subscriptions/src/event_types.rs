//! Event types: `GET /event_types` (the catalog, and with a key the caller's own types too) and
//! `…/workspaces/{ws}/event_types[/{event_type}]`, where a workspace defines, reads and deletes
//! its own.

use std::sync::{Arc, LazyLock};

use axum::extract::{FromRequestParts, RawPathParams, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use axum::Router;
use chrono::{SecondsFormat, Utc};
use hookline_shared::custom_types::{
    CustomEventType, EventTypeName, NewEventType, MAX_DESCRIPTION_LEN, MAX_NAME_LEN,
};
use hookline_shared::http::{authenticated, json, ApiError, Caller, JsonBody};
use hookline_shared::validation::{compile, schema_errors};
use hookline_shared::{catalog, Defined, EventTypeStore as _};
use jsonschema::Validator;
use serde::{Deserialize, Serialize};
use serde_json::{json as json_value, Value};

use crate::Ports;

pub fn router<N: Ports>() -> Router<Arc<N>> {
    Router::new()
        .route(
            "/notify/api/v1/event_types",
            authenticated(get(list_event_types::<N>), "GET"),
        )
        .route(
            "/notify/api/v1/workspaces/{workspace_id}/event_types",
            authenticated(
                get(list_own_event_types::<N>).post(create_event_type::<N>),
                "GET, POST",
            ),
        )
        .route(
            "/notify/api/v1/workspaces/{workspace_id}/event_types/{event_type}",
            authenticated(
                get(get_event_type::<N>).delete(delete_event_type::<N>),
                "GET, DELETE",
            ),
        )
}

/// One entry of `GET /event_types`: a built-in type as the catalog describes it, or one of the
/// caller's own, marked `custom`.
#[derive(Debug, Serialize)]
pub struct EventTypeOut<'a> {
    pub event_type: &'a str,
    pub description: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub custom: bool,
}

/// `POST …/event_types`; the schema has already rejected unknown fields and wrong types.
#[derive(Debug, Deserialize)]
pub struct CustomEventTypeIn {
    pub event_type: String,
    pub description: String,
    pub schema: Option<Value>,
    pub sample: Option<Value>,
}

/// A workspace's own type as its list shows it: without schema and sample, so a full workspace
/// still answers within a Lambda's response limit.
#[derive(Debug, Serialize)]
pub struct CustomEventTypeSummaryOut<'a> {
    pub event_type: &'a str,
    pub description: &'a str,
    pub custom: bool,
    pub has_schema: bool,
    pub has_sample: bool,
    pub created_at: String,
}

/// One of a workspace's own types in full.
#[derive(Debug, Serialize)]
pub struct CustomEventTypeOut<'a> {
    #[serde(flatten)]
    pub summary: CustomEventTypeSummaryOut<'a>,
    pub schema: Option<&'a Value>,
    pub sample: Option<&'a Value>,
}

impl<'a> CustomEventTypeSummaryOut<'a> {
    fn new(custom: &'a CustomEventType) -> Self {
        Self {
            event_type: custom.name.as_str(),
            description: &custom.description,
            custom: true,
            has_schema: custom.schema.is_some(),
            has_sample: custom.sample.is_some(),
            created_at: custom.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }
}

impl<'a> CustomEventTypeOut<'a> {
    fn new(custom: &'a CustomEventType) -> Self {
        Self {
            summary: CustomEventTypeSummaryOut::new(custom),
            schema: custom.schema.as_ref(),
            sample: custom.sample.as_ref(),
        }
    }
}

/// The built-in types, then the caller's own.
async fn list_event_types<N: Ports>(
    State(api): State<Arc<N>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let own = api
        .event_types()
        .list_event_types(&caller.workspace)
        .await?;
    let built_in = catalog::all().iter().map(|info| EventTypeOut {
        event_type: &info.name,
        description: &info.description,
        custom: false,
    });
    let custom = own.iter().map(|t| EventTypeOut {
        event_type: t.name.as_str(),
        description: &t.description,
        custom: true,
    });
    let types: Vec<EventTypeOut<'_>> = built_in.chain(custom).collect();
    Ok(json(StatusCode::OK, &types))
}

async fn list_own_event_types<N: Ports>(
    State(api): State<Arc<N>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let own = api
        .event_types()
        .list_event_types(&caller.workspace)
        .await?;
    let out: Vec<_> = own.iter().map(CustomEventTypeSummaryOut::new).collect();
    Ok(json(StatusCode::OK, &json_value!({ "event_types": out })))
}

async fn create_event_type<N: Ports>(
    State(api): State<Arc<N>>,
    caller: Caller,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let body = body.value()?;
    let errors = schema_errors(&CREATE_SCHEMA, &body);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let input: CustomEventTypeIn =
        serde_json::from_value(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let new = NewEventType {
        name: input.event_type,
        description: input.description,
        schema: input.schema,
        sample: input.sample,
    };
    let custom =
        CustomEventType::define(caller.workspace, new, Utc::now()).map_err(ApiError::Invalid)?;
    match api.event_types().create_event_type(&custom).await? {
        Defined::Created => Ok(json(StatusCode::CREATED, &CustomEventTypeOut::new(&custom))),
        Defined::NameTaken => Err(ApiError::Conflict),
        Defined::LimitReached => Err(ApiError::LimitReached),
    }
}

async fn get_event_type<N: Ports>(
    State(api): State<Arc<N>>,
    caller: Caller,
    name: TypeParam,
) -> Result<Response, ApiError> {
    let name = name.name()?;
    let custom = api
        .event_types()
        .get_event_type(&caller.workspace, name)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(json(StatusCode::OK, &CustomEventTypeOut::new(&custom)))
}

async fn delete_event_type<N: Ports>(
    State(api): State<Arc<N>>,
    caller: Caller,
    name: TypeParam,
) -> Result<Response, ApiError> {
    let name = name.name()?;
    if !api
        .event_types()
        .delete_event_type(&caller.workspace, name)
        .await?
    {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The route's `{event_type}`. One that is not a valid name reads exactly like an unknown one
/// (or another workspace's: the store is keyed by workspace).
struct TypeParam(Option<EventTypeName>);

impl TypeParam {
    fn name(&self) -> Result<&EventTypeName, ApiError> {
        self.0.as_ref().ok_or(ApiError::NotFound)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TypeParam {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state).await.ok();
        let name = params.as_ref().and_then(|params| {
            params
                .iter()
                .find(|(param, _)| *param == "event_type")
                .and_then(|(_, value)| EventTypeName::parse(value))
        });
        Ok(TypeParam(name))
    }
}

/// The body's shape; the name rule, the schema and the sample are the domain's to check.
static CREATE_SCHEMA: LazyLock<Validator> = LazyLock::new(|| {
    compile(
        &json_value!({"type": "object", "additionalProperties": false,
        "required": ["event_type", "description"],
        "properties": {
            "event_type": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LEN},
            "description": {"type": "string", "minLength": 1, "maxLength": MAX_DESCRIPTION_LEN},
            "schema": {"type": ["object", "boolean"]},
            "sample": {}}}),
    )
});

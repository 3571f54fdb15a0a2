//! `…/workspaces/{ws}/connections[/{connection_id}]`: a workspace's provider connections —
//! create (the secret shown), list (secrets not shown), read one (secret revealed, like a
//! subscription's), delete.
//!
//! A router of its own, with the one store it needs, so the Lambda and local mode merge it
//! beside the rest of the notify API.

use std::sync::Arc;

use axum::extract::{RawPathParams, State};
use axum::http::StatusCode;
use axum::middleware::from_fn;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use axum::Router;
use chrono::{SecondsFormat, Utc};
use hookline_shared::connection::MAX_CONNECTIONS_PER_WORKSPACE;
use hookline_shared::http::{
    api_layer, authenticated, json, ApiError, ApiState, Caller, JsonBody, Keyring,
};
use hookline_shared::{Connection, ConnectionId, ConnectionStore, Created, WorkspaceStore};
use serde::Serialize;

use crate::NotifyEnvelope;

/// Largest create request; the body is three short strings.
pub const MAX_CONNECTION_BYTES: usize = 4 * 1024;
const CONNECTION_PARAM: &str = "connection_id";
const NOT_FOUND: ApiError = ApiError::Missing("Connection");

/// What the connection routes need; built once per cold start (or once by local mode).
pub struct ConnectionsApi<W, C> {
    pub keyring: Keyring<W>,
    pub connections: C,
}

impl<W: WorkspaceStore, C> ConnectionsApi<W, C> {
    pub fn new(workspaces: W, connections: C) -> Self {
        Self {
            keyring: Keyring::new(workspaces),
            connections,
        }
    }
}

impl<W, C> ApiState for ConnectionsApi<W, C>
where
    W: WorkspaceStore + 'static,
    C: Send + Sync + 'static,
{
    type Workspaces = W;
    const MAX_BODY_BYTES: usize = MAX_CONNECTION_BYTES;

    fn keyring(&self) -> &Keyring<W> {
        &self.keyring
    }
}

/// The connection routes, answering in the notify API's envelope.
pub fn router<W, C>(deps: ConnectionsApi<W, C>) -> Router
where
    W: WorkspaceStore + 'static,
    C: ConnectionStore + 'static,
{
    Router::new()
        .route(
            "/notify/api/v1/workspaces/{workspace_id}/connections",
            authenticated(get(list::<W, C>).post(create::<W, C>), "GET, POST"),
        )
        .route(
            "/notify/api/v1/workspaces/{workspace_id}/connections/{connection_id}",
            authenticated(get(reveal::<W, C>).delete(delete::<W, C>), "GET, DELETE"),
        )
        .layer(from_fn(api_layer::<NotifyEnvelope>))
        .with_state(Arc::new(deps))
}

/// A connection as the API shows it; `secret` only where the caller asked to see it.
#[derive(Debug, Serialize)]
struct ConnectionOut<'a> {
    id: &'a str,
    kind: &'static str,
    name: &'a str,
    ingest_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
    created_at: String,
}

impl<'a> ConnectionOut<'a> {
    fn new(connection: &'a Connection, with_secret: bool) -> Self {
        Self {
            id: connection.id.as_str(),
            kind: connection.kind.as_str(),
            name: &connection.name,
            ingest_url: connection.ingest_path(),
            secret: with_secret.then(|| connection.secret.expose()),
            created_at: connection
                .created_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
        }
    }
}

/// The route's `{connection_id}`; a malformed one reads exactly like an unknown one.
fn connection_id(params: &RawPathParams) -> Result<ConnectionId, ApiError> {
    params
        .iter()
        .find(|(name, _)| *name == CONNECTION_PARAM)
        .and_then(|(_, value)| ConnectionId::parse(value))
        .ok_or(NOT_FOUND)
}

/// 201 with the new connection and its secret.
async fn create<W, C>(
    State(api): State<Arc<ConnectionsApi<W, C>>>,
    caller: Caller,
    body: JsonBody,
) -> Result<Response, ApiError>
where
    W: WorkspaceStore + 'static,
    C: ConnectionStore + 'static,
{
    let connection = Connection::create(caller.workspace, &body.value()?, Utc::now())
        .map_err(ApiError::Invalid)?;
    match api.connections.create_connection(&connection).await? {
        Created::Created => Ok(json(
            StatusCode::CREATED,
            &ConnectionOut::new(&connection, true),
        )),
        Created::LimitReached => Err(ApiError::AtLimit {
            what: "connections",
            max: MAX_CONNECTIONS_PER_WORKSPACE,
        }),
    }
}

/// `{"connections": [...]}`, oldest first, without their secrets.
async fn list<W, C>(
    State(api): State<Arc<ConnectionsApi<W, C>>>,
    caller: Caller,
) -> Result<Response, ApiError>
where
    W: WorkspaceStore + 'static,
    C: ConnectionStore + 'static,
{
    let all = api.connections.list_connections(&caller.workspace).await?;
    let shown: Vec<ConnectionOut<'_>> = all.iter().map(|c| ConnectionOut::new(c, false)).collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "connections": shown }),
    ))
}

/// One connection with its secret: the reveal a provider's setup needs.
async fn reveal<W, C>(
    State(api): State<Arc<ConnectionsApi<W, C>>>,
    caller: Caller,
    params: RawPathParams,
) -> Result<Response, ApiError>
where
    W: WorkspaceStore + 'static,
    C: ConnectionStore + 'static,
{
    let id = connection_id(&params)?;
    let connection = api
        .connections
        .get_connection(&caller.workspace, &id)
        .await?
        .ok_or(NOT_FOUND)?;
    Ok(json(StatusCode::OK, &ConnectionOut::new(&connection, true)))
}

/// 204; 404 for an id this workspace does not hold (another workspace's included).
async fn delete<W, C>(
    State(api): State<Arc<ConnectionsApi<W, C>>>,
    caller: Caller,
    params: RawPathParams,
) -> Result<Response, ApiError>
where
    W: WorkspaceStore + 'static,
    C: ConnectionStore + 'static,
{
    let id = connection_id(&params)?;
    if !api
        .connections
        .delete_connection(&caller.workspace, &id)
        .await?
    {
        return Err(NOT_FOUND);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

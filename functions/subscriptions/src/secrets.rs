//! `…/subscription/{id}/secret[/rotate]`: reveal the signing secret, or rotate it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use hookline_shared::http::{authenticated, json, ApiError};
use hookline_shared::{Subscription, SubscriptionStore as _};
use serde::Serialize;

use crate::{Found, Ports};

pub fn router<N: Ports>() -> Router<Arc<N>> {
    Router::new()
        .route(
            "/notify/api/v1/workspaces/{workspace_id}/subscription/{subscription_id}/secret",
            authenticated(get(reveal_secret), "GET"),
        )
        .route(
            "/notify/api/v1/workspaces/{workspace_id}/subscription/{subscription_id}/secret/rotate",
            authenticated(post(rotate_secret::<N>), "POST"),
        )
}

/// The current secret and until when older ones still sign.
#[derive(Debug, Serialize)]
pub struct SecretOut<'a> {
    pub id: &'a str,
    pub secret: &'a str,
    pub previous_secret_expires_at: Option<String>,
}

impl<'a> SecretOut<'a> {
    pub fn new(subscription: &'a Subscription, now: DateTime<Utc>) -> Self {
        let previous = subscription
            .signing_secrets(now)
            .skip(1)
            .filter_map(|s| s.expires_at)
            .max()
            .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true));
        Self {
            id: subscription.id.as_str(),
            secret: &subscription.current_secret().value,
            previous_secret_expires_at: previous,
        }
    }
}

async fn reveal_secret(Found(subscription): Found) -> Response {
    json(StatusCode::OK, &SecretOut::new(&subscription, Utc::now()))
}

async fn rotate_secret<N: Ports>(
    State(api): State<Arc<N>>,
    Found(current): Found,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let rotated = current.with_rotated_secret(now);
    if !api
        .subscriptions()
        .replace_subscription(&current, &rotated)
        .await?
    {
        return Err(ApiError::Conflict);
    }
    Ok(json(StatusCode::OK, &SecretOut::new(&rotated, now)))
}

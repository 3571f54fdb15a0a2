//! The subscription a route's `{subscription_id}` names, read once the caller is known.

use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use hookline_shared::http::{ApiError, Caller};
use hookline_shared::{Subscription, SubscriptionId, SubscriptionStore, WorkspaceId};

use crate::Ports;

/// The name of the path parameter that names one subscription.
const SUBSCRIPTION_PARAM: &str = "subscription_id";

/// The route's `{subscription_id}`. One that is malformed reads exactly like an unknown one (or
/// another workspace's: the store is keyed by workspace, so those are indistinguishable).
#[derive(Debug, Clone)]
pub struct SubscriptionParam(Option<SubscriptionId>);

impl SubscriptionParam {
    pub fn id(&self) -> Result<&SubscriptionId, ApiError> {
        self.0.as_ref().ok_or(ApiError::NotFound)
    }

    /// The subscription of `workspace` it names, or `NotFound`.
    pub async fn find<S: SubscriptionStore>(
        &self,
        store: &S,
        workspace: &WorkspaceId,
    ) -> Result<Subscription, ApiError> {
        store
            .get_subscription(workspace, self.id()?)
            .await?
            .ok_or(ApiError::NotFound)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SubscriptionParam {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state).await.ok();
        let id = params.as_ref().and_then(|params| {
            params
                .iter()
                .find(|(name, _)| *name == SUBSCRIPTION_PARAM)
                .and_then(|(_, value)| SubscriptionId::parse(value))
        });
        Ok(SubscriptionParam(id))
    }
}

/// The caller's subscription a route's `{subscription_id}` names, looked up once the caller is
/// known; `NotFound` for ids that are malformed, unknown or another workspace's.
pub struct Found(pub Subscription);

impl<N: Ports> FromRequestParts<Arc<N>> for Found {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<N>) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, api).await?;
        let id = SubscriptionParam::from_request_parts(parts, api).await;
        let id = id.unwrap_or_else(|never| match never {});
        Ok(Found(
            id.find(api.subscriptions(), &caller.workspace).await?,
        ))
    }
}

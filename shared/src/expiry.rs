//! When a record with a time to live stops counting.

/// TTL visibility, the rule every store applies: a record is live while its `expires_at`
/// (epoch seconds) is not before `now`. DynamoDB deletes expired items lazily, so its reads
/// filter with the same comparison rather than trust the deletion.
pub fn is_live(expires_at: i64, now: i64) -> bool {
    expires_at >= now
}

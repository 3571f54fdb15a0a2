//! `order_by` for subscription lists: the 14 values of seed 002, ties broken by id.

use std::cmp::Ordering;

use hookline_shared::Subscription;

/// Every accepted `order_by` value.
pub const ORDER_BY_VALUES: [&str; 14] = [
    "created_at:asc",
    "created_at:desc",
    "updated_at:asc",
    "updated_at:desc",
    "id:asc",
    "id:desc",
    "created_by:asc",
    "created_by:desc",
    "updated_by:asc",
    "updated_by:desc",
    "is_enabled:asc",
    "is_enabled:desc",
    "type:asc",
    "type:desc",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    CreatedAt,
    UpdatedAt,
    Id,
    CreatedBy,
    UpdatedBy,
    IsEnabled,
    Type,
}

/// A field and a direction; the default is `created_at:desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderBy {
    field: Field,
    descending: bool,
}

impl Default for OrderBy {
    fn default() -> Self {
        Self {
            field: Field::CreatedAt,
            descending: true,
        }
    }
}

impl OrderBy {
    pub fn parse(raw: &str) -> Option<Self> {
        let (field, direction) = raw.split_once(':')?;
        let field = match field {
            "created_at" => Field::CreatedAt,
            "updated_at" => Field::UpdatedAt,
            "id" => Field::Id,
            "created_by" => Field::CreatedBy,
            "updated_by" => Field::UpdatedBy,
            "is_enabled" => Field::IsEnabled,
            "type" => Field::Type,
            _ => return None,
        };
        let descending = match direction {
            "asc" => false,
            "desc" => true,
            _ => return None,
        };
        Some(Self { field, descending })
    }

    /// Sorts by the field, then by id, the whole order reversed for `desc`. Missing
    /// `created_by`/`updated_by` sort first ascending; `false` sorts before `true`.
    pub fn sort(self, subscriptions: &mut [Subscription]) {
        subscriptions.sort_by(|a, b| {
            let ordering = self.compare(a, b).then_with(|| a.id.cmp(&b.id));
            if self.descending {
                ordering.reverse()
            } else {
                ordering
            }
        });
    }

    fn compare(self, a: &Subscription, b: &Subscription) -> Ordering {
        match self.field {
            Field::CreatedAt => a.created_at.cmp(&b.created_at),
            Field::UpdatedAt => a.updated_at.cmp(&b.updated_at),
            Field::Id => Ordering::Equal,
            Field::CreatedBy => a.created_by.cmp(&b.created_by),
            Field::UpdatedBy => a.updated_by.cmp(&b.updated_by),
            Field::IsEnabled => a.is_enabled.cmp(&b.is_enabled),
            Field::Type => a.kind.as_str().cmp(b.kind.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_value_parses_and_nothing_else_does() {
        for value in ORDER_BY_VALUES {
            assert!(OrderBy::parse(value).is_some(), "{value}");
        }
        for bad in [
            "name:asc",
            "created_at",
            "created_at:up",
            "",
            ":asc",
            "CREATED_AT:asc",
        ] {
            assert!(OrderBy::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(OrderBy::parse("created_at:desc"), Some(OrderBy::default()));
    }
}

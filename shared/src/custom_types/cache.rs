//! The compiled-schema cache: the validator of a custom type, compiled once per schema in a
//! warm process, for every event published with that type.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jsonschema::Validator;
use serde_json::Value;

use super::{compile_schema, CustomEventType, EventTypeName};
use crate::error::StoreError;
use crate::ids::WorkspaceId;
use crate::ports::{Defined, EventTypeStore};
use crate::validation::{schema_errors, ValidationErrors};

/// Bounds memory; when full the cache is simply emptied.
const MAX_ENTRIES: usize = 1_000;

/// What checking data against a type came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    Valid,
    /// Every fault, at dotted paths relative to the data (`amount`, `lines.1.sku`; a fault of
    /// the whole value is a form error). `custom_types::nested("data", ..)` roots them in a body.
    Invalid(ValidationErrors),
    /// The workspace has no custom type of that name (built-in types are not checked here).
    Unknown,
}

/// One type's compiled schema, and the content it was compiled from.
#[derive(Clone)]
struct Entry {
    schema_hash: Option<String>,
    /// `None` for a type without a schema: any data is valid.
    validator: Option<Arc<Validator>>,
}

/// A workspace's custom types through `store`, with their compiled schemas kept.
///
/// [`CustomTypes::validate`] reads the type (one strongly consistent read, which publishing
/// needs anyway to know the type exists) and compiles its schema only when this process has not
/// compiled that same content for that (workspace, name) before: the entry is keyed on the
/// stored [`CustomEventType::schema_hash`], so a type deleted and defined again with another
/// schema, by this process or any other, is compiled afresh. Writes pass through and a delete
/// drops the entry at once.
pub struct CustomTypes<T> {
    store: T,
    compiled: Mutex<HashMap<(WorkspaceId, EventTypeName), Entry>>,
}

impl<T> CustomTypes<T> {
    pub fn new(store: T) -> Self {
        Self {
            store,
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// The store underneath.
    pub fn store(&self) -> &T {
        &self.store
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<(WorkspaceId, EventTypeName), Entry>> {
        self.compiled.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The compiled schema of `custom` (`None` when it has none), compiled at most once per
    /// content. Compiling happens outside the lock; two first uses at once may both compile.
    pub fn validator(
        &self,
        custom: &CustomEventType,
    ) -> Result<Option<Arc<Validator>>, StoreError> {
        let key = (custom.workspace_id.clone(), custom.name.clone());
        if let Some(hit) = self.entries().get(&key) {
            if hit.schema_hash == custom.schema_hash {
                return Ok(hit.validator.clone());
            }
        }
        let validator = match &custom.schema {
            Some(schema) => Some(Arc::new(
                compile_schema(schema).map_err(|_| custom.corrupt_schema())?,
            )),
            None => None,
        };
        let entry = Entry {
            schema_hash: custom.schema_hash.clone(),
            validator: validator.clone(),
        };
        let mut entries = self.entries();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, entry);
        Ok(validator)
    }

    /// `data` checked against `custom`'s schema.
    pub fn check(&self, custom: &CustomEventType, data: &Value) -> Result<Checked, StoreError> {
        let errors = match self.validator(custom)? {
            Some(validator) => schema_errors(&validator, data),
            None => ValidationErrors::default(),
        };
        Ok(if errors.is_empty() {
            Checked::Valid
        } else {
            Checked::Invalid(errors)
        })
    }
}

impl<T: EventTypeStore> CustomTypes<T> {
    /// `data` checked against the schema of the workspace's custom type `name`: what publishing
    /// a custom type calls. `Unknown` for names that are not the workspace's (or not names).
    pub async fn validate(
        &self,
        workspace: &WorkspaceId,
        name: &str,
        data: &Value,
    ) -> Result<Checked, StoreError> {
        let Some(name) = EventTypeName::parse(name) else {
            return Ok(Checked::Unknown);
        };
        match self.store.get_event_type(workspace, &name).await? {
            Some(custom) => self.check(&custom, data),
            None => Ok(Checked::Unknown),
        }
    }
}

impl<T: EventTypeStore> EventTypeStore for CustomTypes<T> {
    async fn create_event_type(&self, custom: &CustomEventType) -> Result<Defined, StoreError> {
        self.store.create_event_type(custom).await
    }

    async fn get_event_type(
        &self,
        workspace: &WorkspaceId,
        name: &EventTypeName,
    ) -> Result<Option<CustomEventType>, StoreError> {
        self.store.get_event_type(workspace, name).await
    }

    async fn list_event_types(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<CustomEventType>, StoreError> {
        self.store.list_event_types(workspace).await
    }

    async fn delete_event_type(
        &self,
        workspace: &WorkspaceId,
        name: &EventTypeName,
    ) -> Result<bool, StoreError> {
        let deleted = self.store.delete_event_type(workspace, name).await?;
        self.entries().remove(&(workspace.clone(), name.clone()));
        Ok(deleted)
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::adapters::EmbeddedDb;
    use crate::custom_types::NewEventType;

    fn defined(workspace: &WorkspaceId, schema: Option<Value>) -> CustomEventType {
        let new = NewEventType {
            name: "invoice.paid".into(),
            description: "An invoice was paid".into(),
            schema,
            sample: None,
        };
        CustomEventType::define(workspace.clone(), new, Utc::now()).unwrap()
    }

    fn amount_schema(kind: &str) -> Value {
        json!({"type": "object", "required": ["amount"], "properties": {"amount": {"type": kind}}})
    }

    #[tokio::test]
    async fn a_schema_is_compiled_once_and_faults_are_named() {
        let types = CustomTypes::new(EmbeddedDb::open_in_memory().unwrap());
        let ws = WorkspaceId::generate();
        let custom = defined(&ws, Some(amount_schema("number")));
        assert_eq!(
            types.create_event_type(&custom).await.unwrap(),
            Defined::Created
        );

        let first = types.validator(&custom).unwrap().unwrap();
        let again = types.validator(&custom).unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &again), "compiled once");

        let valid = types
            .validate(&ws, "invoice.paid", &json!({"amount": 3}))
            .await;
        assert_eq!(valid.unwrap(), Checked::Valid);
        let invalid = types
            .validate(&ws, "invoice.paid", &json!({"amount": "3"}))
            .await
            .unwrap();
        let Checked::Invalid(errors) = invalid else {
            panic!("{invalid:?}")
        };
        assert_eq!(
            errors.field_errors["amount"],
            ["Expected number, received string"]
        );
        let whole = types
            .validate(&ws, "invoice.paid", &json!({}))
            .await
            .unwrap();
        assert!(matches!(whole, Checked::Invalid(e) if e.field_errors.contains_key("amount")));
    }

    #[tokio::test]
    async fn a_type_defined_again_with_another_schema_is_compiled_afresh() {
        let store = EmbeddedDb::open_in_memory().unwrap();
        let types = CustomTypes::new(store.clone());
        let ws = WorkspaceId::generate();
        let number = defined(&ws, Some(amount_schema("number")));
        store.create_event_type(&number).await.unwrap();
        let data = json!({"amount": "12"});
        assert!(matches!(
            types.validate(&ws, "invoice.paid", &data).await.unwrap(),
            Checked::Invalid(_)
        ));
        // Changed behind this process's back, as another process would.
        let name = number.name.clone();
        assert!(store.delete_event_type(&ws, &name).await.unwrap());
        let string = defined(&ws, Some(amount_schema("string")));
        store.create_event_type(&string).await.unwrap();
        assert_eq!(
            types.validate(&ws, "invoice.paid", &data).await.unwrap(),
            Checked::Valid
        );
        // And without a schema, anything goes.
        assert!(types.delete_event_type(&ws, &name).await.unwrap());
        assert_eq!(
            types.validate(&ws, "invoice.paid", &data).await.unwrap(),
            Checked::Unknown
        );
        store.create_event_type(&defined(&ws, None)).await.unwrap();
        assert_eq!(
            types
                .validate(&ws, "invoice.paid", &json!([1]))
                .await
                .unwrap(),
            Checked::Valid
        );
    }

    #[tokio::test]
    async fn names_that_are_not_the_workspaces_are_unknown() {
        let types = CustomTypes::new(EmbeddedDb::open_in_memory().unwrap());
        let (ws, other) = (WorkspaceId::generate(), WorkspaceId::generate());
        let custom = defined(&ws, Some(amount_schema("number")));
        types.create_event_type(&custom).await.unwrap();
        for (workspace, name) in [
            (&other, "invoice.paid"),
            (&ws, "invoice.unpaid"),
            (&ws, "emails.sent"),
            (&ws, "not a name"),
        ] {
            let checked = types.validate(workspace, name, &json!({})).await.unwrap();
            assert_eq!(checked, Checked::Unknown, "{name}");
        }
    }
}

//! Compiling the JSON Schema a workspace gives its type: the engine built-in schemas use
//! (`validation::compile`'s draft and format checking), made safe for schemas a tenant wrote.
//!
//! A tenant's schema is untrusted input run on our machines, so three things differ: compiling
//! fails with a reason instead of panicking; references never leave the schema (no HTTP fetch, no
//! file read: `$ref` works within the document and its `$defs`); and `pattern` runs on the linear-
//! time `regex` engine with a bounded program size, so no pattern can backtrack catastrophically.

use jsonschema::error::ValidationErrorKind;
use jsonschema::{PatternOptions, Retrieve, Uri, ValidationError, Validator};
use serde_json::Value;

use super::references::check_references;
use crate::validation::ValidationErrors;

/// Largest schema, serialized compactly.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// The draft a schema may declare in `$schema` (the one it is compiled as either way).
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
/// Largest compiled program of one `pattern`, so a short pattern cannot expand into megabytes.
const MAX_PATTERN_PROGRAM_BYTES: usize = 256 * 1024;

/// Refuses every reference outside the schema itself.
struct WithinTheSchemaOnly;

impl Retrieve for WithinTheSchemaOnly {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!(
            "{} is outside the schema; references may only point within it (#/$defs/…)",
            uri.as_str()
        )
        .into())
    }
}

/// The validator of `schema`, or why it is not one, at paths under `schema` (`schema` itself,
/// `schema.properties.amount.type`…).
pub fn compile_schema(schema: &Value) -> Result<Validator, ValidationErrors> {
    let size = serde_json::to_vec(schema).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_SCHEMA_BYTES {
        return Err(ValidationErrors::field(
            "schema",
            format!("Must be at most {MAX_SCHEMA_BYTES} bytes serialized; it is {size}"),
        ));
    }
    if let Some(declared) = schema.get("$schema") {
        if declared.as_str().map(|d| d.trim_end_matches('#')) != Some(DRAFT_2020_12) {
            return Err(ValidationErrors::field(
                "schema.$schema",
                format!("Only JSON Schema draft 2020-12 is supported; omit $schema or use {DRAFT_2020_12}"),
            ));
        }
    }
    // The schema against the draft's meta-schema first, so its faults are located by their
    // instance path (the schema is the instance), and what compiling refuses is all that is left.
    jsonschema::draft202012::meta::validate(schema).map_err(|err| {
        ValidationErrors::field(
            location(err.instance_path.as_str()),
            format!("Invalid JSON Schema: {err}"),
        )
    })?;
    check_references(schema)?;
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .with_retriever(WithinTheSchemaOnly)
        .with_pattern_options(PatternOptions::regex().size_limit(MAX_PATTERN_PROGRAM_BYTES))
        .build(schema)
        .map_err(|err| {
            // Compiling's faults carry their place in the schema in one path or the other,
            // depending on the keyword.
            let at = [err.instance_path.as_str(), err.schema_path.as_str()]
                .into_iter()
                .find(|p| !p.is_empty())
                .unwrap_or_default();
            ValidationErrors::field(location(at), compile_fault(&err))
        })
}

fn compile_fault(err: &ValidationError<'_>) -> String {
    match &err.kind {
        ValidationErrorKind::Format { format } if format == "regex" => format!(
            "{} is not a supported regular expression: look-around and back-references are not \
             supported, and a pattern may compile to at most {} KiB",
            err.instance,
            MAX_PATTERN_PROGRAM_BYTES / 1024
        ),
        _ => format!("Invalid JSON Schema: {err}"),
    }
}

/// A JSON Pointer into the schema as a dotted path under `schema`.
fn location(pointer: &str) -> String {
    let dotted: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|segment| segment.replace("~1", "/").replace("~0", "~"))
        .collect();
    std::iter::once("schema".to_owned())
        .chain(dotted)
        .collect::<Vec<_>>()
        .join(".")
}

/// The content hash the compiled-schema cache keys on.
pub(super) fn hash(schema: &Value) -> String {
    let bytes = serde_json::to_vec(schema).expect("JSON values serialize");
    blake3::hash(&bytes).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fault(schema: Value) -> (String, String) {
        let errors = compile_schema(&schema).expect_err("refused");
        let (path, messages) = errors
            .field_errors
            .into_iter()
            .next()
            .expect("a field fault");
        (path, messages.into_iter().next().unwrap())
    }

    #[test]
    fn a_valid_schema_compiles_and_checks_formats() {
        let validator = compile_schema(&json!({"type": "object",
            "properties": {"email": {"type": "string", "format": "email"}}}))
        .unwrap();
        assert!(validator.is_valid(&json!({"email": "a@example.com"})));
        assert!(!validator.is_valid(&json!({"email": "nope"})));
        assert!(
            compile_schema(&json!(true)).is_ok(),
            "boolean schemas are schemas"
        );
    }

    #[test]
    fn an_invalid_keyword_value_is_named_by_its_path() {
        let (path, message) = fault(json!({"properties": {"amount": {"minimum": "one"}}}));
        assert_eq!(path, "schema.properties.amount.minimum");
        assert!(message.starts_with("Invalid JSON Schema"), "{message}");
    }

    #[test]
    fn references_outside_the_schema_are_refused_and_never_fetched() {
        for outside in [
            "http://169.254.169.254/latest/meta-data",
            "https://example.com/schema.json",
            "file:///etc/passwd",
        ] {
            let (path, message) = fault(json!({"$ref": outside}));
            assert!(path.starts_with("schema"), "{path}");
            assert!(
                message.contains("outside the schema"),
                "{outside}: {message}"
            );
        }
        let local = json!({"$defs": {"id": {"type": "string"}},
            "type": "object", "properties": {"id": {"$ref": "#/$defs/id"}}});
        let validator = compile_schema(&local).unwrap();
        assert!(!validator.is_valid(&json!({"id": 1})));
        let (_, message) = fault(json!({"$ref": "#/$defs/missing"}));
        assert!(message.contains("missing"), "{message}");
    }

    #[test]
    fn only_draft_2020_12_may_be_declared() {
        let (path, _) = fault(json!({"$schema": "http://json-schema.org/draft-07/schema#"}));
        assert_eq!(path, "schema.$schema");
        assert!(compile_schema(&json!({"$schema": DRAFT_2020_12, "type": "object"})).is_ok());
        assert!(compile_schema(&json!({"$schema": format!("{DRAFT_2020_12}#")})).is_ok());
    }

    #[test]
    fn patterns_run_in_linear_time_and_may_not_expand_without_bound() {
        let validator = compile_schema(&json!({"type": "string", "pattern": "^(a+)+$"})).unwrap();
        let hostile = format!("{}!", "a".repeat(50_000));
        assert!(!validator.is_valid(&json!(hostile)));
        let (path, message) = fault(json!({"properties": {"code": {"pattern": "(?=look)"}}}));
        assert_eq!(
            path, "schema.properties.code",
            "the subschema holding the pattern"
        );
        assert!(message.contains("look-around"), "{message}");
        let (_, message) = fault(json!({"type": "string", "pattern": "\\w{1000}{1000}"}));
        assert!(
            message.contains("not a supported regular expression"),
            "{message}"
        );
    }

    /// Compiled, this schema overflows the validator's stack on any value (and aborts the
    /// process); it is refused before it is compiled.
    #[test]
    fn a_reference_loop_that_never_descends_is_refused() {
        let looping = json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
            "$ref": "#/$defs/a"});
        let (path, message) = fault(looping);
        assert!(path.starts_with("schema"), "{path}");
        assert!(message.contains("loops back"), "{message}");
        let tree = json!({"type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}});
        let validator = compile_schema(&tree).unwrap();
        assert!(validator.is_valid(&json!({"children": [{"children": []}]})));
        assert!(!validator.is_valid(&json!({"children": [{"children": 1}]})));
    }

    #[test]
    fn a_schema_over_the_size_limit_is_refused_before_compiling() {
        let big = json!({"description": "d".repeat(MAX_SCHEMA_BYTES)});
        let (path, message) = fault(big);
        assert_eq!(path, "schema");
        assert!(message.contains("at most 65536 bytes"), "{message}");
        let fits = json!({"description": "d".repeat(MAX_SCHEMA_BYTES - 100)});
        assert!(compile_schema(&fits).is_ok());
    }
}

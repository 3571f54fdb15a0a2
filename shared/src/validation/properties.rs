//! Properties of the ingest validators over generated bodies of every category: they never
//! panic, every rejection names where the fault is, whatever they accept can be stored and read
//! back, and the JSON limits refuse exactly the breaches put into a body.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Map, Value};

use super::json_limits::{Breach, Violation, MAX_DEPTH};
use super::{schema_for, validate_body, Rejection, ValidationErrors};
use crate::proptest_cases::config;
use crate::timestamp::test_now;
use crate::Category;

/// The valid sample body of each category that ships with the project.
fn sample(category: Category) -> Value {
    let lambda_event = |text: &str| -> Value {
        let event: Value = serde_json::from_str(text).expect("fixtures are JSON");
        serde_json::from_str(event["body"].as_str().expect("fixtures carry a body"))
            .expect("fixture bodies are JSON")
    };
    match category {
        Category::Emails => {
            serde_json::from_str(include_str!("../../../events/bodies/emails.json")).unwrap()
        }
        Category::Calls => lambda_event(include_str!("../../../events/ingest/calls-valid.json")),
        Category::Crm => lambda_event(include_str!("../../../events/ingest/crm-valid.json")),
        Category::Social => lambda_event(include_str!("../../../events/ingest/social-valid.json")),
    }
}

fn category() -> impl Strategy<Value = Category> {
    prop::sample::select(Category::ALL.to_vec())
}

/// Text of every kind: anything at all, and shapes the rules look at closely.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z]{1,8}@[a-z]{1,8}\\.io",
        "https?://[a-z.]{1,12}/[a-z]{0,6}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?",
        "[0-9]{1,14}(\\.[0-9]{0,4})?",
        "(\\[[0-9:]{5,8}\\] )?[A-Z][a-z]{0,6}: [a-z ]{0,12}(\n[A-Z]: [a-z]{0,6}){0,3}",
        prop::sample::select(vec!["sent", "transcript", "deal_won", "message_sent", "", " "])
            .prop_map(str::to_owned),
    ]
}

/// Keys: the category's own members, near misses and arbitrary non-empty text.
fn key() -> impl Strategy<Value = String> {
    let known: Vec<String> = Category::ALL
        .into_iter()
        .flat_map(|c| {
            schema_for(c)["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        })
        .chain(["text", "html", "email", "name", "speaker", "passthrough"].map(String::from))
        .collect();
    prop_oneof![
        3 => prop::sample::select(known),
        1 => "[a-zA-Z_\"\\\\.ü]{1,10}",
        1 => any::<String>().prop_filter("keys are named", |k| !k.is_empty()),
    ]
}

/// Any JSON value a `Value` holds, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| f.is_finite().then(|| Value::from(f))),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(key(), inner, 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// One change to a sample body.
#[derive(Debug, Clone)]
enum Mutation {
    Remove(String),
    Set(String, Value),
    /// Sets a member inside an object member (`body.text`, `from.email`, …).
    SetInner(String, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        key().prop_map(Mutation::Remove),
        (key(), json_value()).prop_map(|(k, v)| Mutation::Set(k, v)),
        (key(), key(), json_value()).prop_map(|(k, i, v)| Mutation::SetInner(k, i, v)),
    ]
}

fn mutated(category: Category, mutations: &[Mutation]) -> Value {
    let mut body = sample(category);
    let members = body.as_object_mut().expect("samples are objects");
    for mutation in mutations {
        match mutation {
            Mutation::Remove(name) => {
                members.remove(name);
            }
            Mutation::Set(name, value) => {
                members.insert(name.clone(), value.clone());
            }
            Mutation::SetInner(name, inner, value) => {
                if let Some(Value::Object(object)) = members.get_mut(name) {
                    object.insert(inner.clone(), value.clone());
                }
            }
        }
    }
    body
}

/// Judges `bytes` (the JSON text of `body`) and checks what every answer must be: no panic (the
/// runner catches one), never "malformed" for well-formed JSON, a rejection that names where
/// each fault is, and an accepted payload that reads back as a `Value`.
fn judge(category: Category, body: &Value, bytes: &[u8]) -> Result<(), TestCaseError> {
    match validate_body(category, bytes, test_now()) {
        Ok(event) => {
            prop_assert!(body.is_object(), "only objects are events");
            prop_assert!(event.payload.to_value().is_some_and(|v| v.is_object()));
        }
        Err(Rejection::Malformed(detail)) => {
            prop_assert!(false, "well-formed JSON called malformed: {detail}");
        }
        Err(Rejection::Invalid(errors)) => names_every_fault(body, &errors)?,
    }
    Ok(())
}

/// A refused object has only field faults, each under a path and with a message; anything
/// else is refused as a whole, saying what it is.
fn names_every_fault(body: &Value, errors: &ValidationErrors) -> Result<(), TestCaseError> {
    prop_assert!(!errors.is_empty());
    for (path, messages) in &errors.field_errors {
        prop_assert!(!path.is_empty());
        prop_assert!(!messages.is_empty() && messages.iter().all(|m| !m.is_empty()));
    }
    if body.is_object() {
        prop_assert!(errors.form_errors.is_empty(), "{errors:?}");
    } else if errors.field_errors.is_empty() {
        prop_assert!(errors.form_errors[0].starts_with("Expected a JSON object"));
    }
    Ok(())
}

/// A member put into a body as raw JSON text, and the breach of the limits it is, if any.
#[derive(Debug, Clone)]
struct Injected {
    key: String,
    value: String,
    /// The path and breach the limits must report; `None` when the member keeps them.
    breach: Option<(String, Breach, bool)>,
}

fn injected() -> impl Strategy<Value = Injected> {
    let depth = (1..=MAX_DEPTH + 8, any::<bool>()).prop_map(|(levels, arrays)| {
        let (open, close, segment) = if arrays {
            ("[", "]", ".0")
        } else {
            (r#"{"k":"#, "}", ".k")
        };
        let value = format!("{}0{}", open.repeat(levels), close.repeat(levels));
        // The member is level 2, so `levels` containers reach level `levels + 1`.
        let breach = (levels + 1 > MAX_DEPTH).then(|| {
            let path = format!("vendor{}", segment.repeat(MAX_DEPTH - 1));
            (path, Breach::TooDeep, false)
        });
        Injected {
            key: "vendor".into(),
            value,
            breach,
        }
    });
    let number = prop_oneof![
        prop::sample::select(vec![
            "1.5",
            "-3",
            "18446744073709551615",
            "1e300",
            "-0",
            "1e-400"
        ])
        .prop_map(|n| (n.to_owned(), false)),
        prop::sample::select(vec!["1e400", "-1e309", "1.8e308"]).prop_map(|n| (n.to_owned(), true)),
        // 309 digits and more overflow a float; 20 to 308 are finite floats.
        (20..=308usize).prop_map(|digits| ("9".repeat(digits), false)),
        (309..=5_000usize).prop_map(|digits| ("9".repeat(digits), true)),
    ]
    .prop_map(|(value, out)| Injected {
        key: "vendor".into(),
        breach: out.then(|| ("vendor".into(), Breach::NumberOutOfRange, false)),
        value,
    });
    let surrogates = prop_oneof![
        Just((r"\ud83d\ude00", None)),
        Just((r"\u00fc", None)),
        Just((r"\ud800", Some(r"\ud800"))),
        Just((r"\udc00", Some(r"\udc00"))),
        Just((r"\udbff\u0041", Some(r"\udbff"))),
    ];
    let text = (surrogates.clone(), "[a-z ]{0,6}").prop_map(|((escape, lone), prefix)| Injected {
        key: "vendor".into(),
        value: format!(r#""{prefix}{escape}""#),
        breach: lone.map(|l| ("vendor".into(), Breach::LoneSurrogate(l.into()), false)),
    });
    let keys = (surrogates, "[a-z]{1,6}").prop_map(|((escape, lone), name)| {
        let key = format!("{name}{escape}");
        Injected {
            breach: lone.map(|l| (key.clone(), Breach::LoneSurrogate(l.into()), true)),
            key,
            value: "true".into(),
        }
    });
    prop_oneof![depth, number, text, keys]
}

/// The JSON text of `body` with `member` written as its last member.
fn with_member(body: &Map<String, Value>, member: &Injected) -> Vec<u8> {
    let mut text = serde_json::to_string(body).unwrap();
    text.pop();
    if !body.is_empty() {
        text.push(',');
    }
    text.push_str(&format!(r#""{}":{}}}"#, member.key, member.value));
    text.into_bytes()
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn mutated_samples_are_judged_and_faults_named(
        category in category(),
        mutations in vec(mutation(), 0..5),
    ) {
        let body = mutated(category, &mutations);
        judge(category, &body, &serde_json::to_vec(&body).unwrap())?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_json_is_judged_and_faults_named(category in category(), body in json_value()) {
        judge(category, &body, &serde_json::to_vec(&body).unwrap())?;
    }

    #[test]
    fn the_limits_refuse_exactly_the_breaches_put_in(
        category in category(),
        mutations in vec(mutation(), 0..3),
        member in injected(),
    ) {
        let body = mutated(category, &mutations);
        let bytes = with_member(body.as_object().unwrap(), &member);
        let answer = validate_body(category, &bytes, test_now());
        match &member.breach {
            Some((path, breach, in_key)) => {
                let expected = Violation { path: path.clone(), in_key: *in_key, breach: breach.clone() };
                prop_assert_eq!(answer.err(), Some(Rejection::Invalid(expected.into())));
            }
            None => {
                // Whatever else is wrong with the body, the limits name nothing.
                let parsed: Value = serde_json::from_slice(&bytes).unwrap();
                judge(category, &parsed, &bytes)?;
                if let Err(Rejection::Invalid(errors)) = answer {
                    prop_assert!(
                        errors.field_errors.values().flatten().all(|m| !m.contains("Nested too deep")
                            && !m.starts_with("Number out of range")
                            && !m.contains("not valid Unicode")),
                        "{errors:?}"
                    );
                }
            }
        }
    }
}

//! Custom attestation types: a JSON Schema that the data must satisfy and
//! jq rules that decide compliance. An attestation of such a type is
//! compliant iff its data validates and every rule yields `true`.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum CustomTypeError {
    #[error("invalid JSON Schema: {0}")]
    Schema(String),
    #[error("invalid jq rule `{rule}`: {reason}")]
    Rule { rule: String, reason: String },
    #[error("the attestation data does not match the schema of type '{type_name}': {problems}")]
    DataInvalid { type_name: String, problems: String },
}

/// Checks that a type definition can be used: the schema is a valid JSON
/// Schema (no remote references) and every rule is valid jq.
pub fn validate_definition(schema: &Value, rules: &[String]) -> Result<(), CustomTypeError> {
    jsonschema::meta::validate(schema).map_err(|e| CustomTypeError::Schema(e.to_string()))?;
    validator(schema)?;
    for rule in rules {
        compile(rule)?;
    }
    Ok(())
}

/// The verdict on one attestation's data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    pub compliant: bool,
    /// One line per rule that did not yield `true`.
    pub reasons: Vec<String>,
}

/// Validates `data` against the schema (an error: such data is refused),
/// then runs every rule on it.
pub fn evaluate(
    type_name: &str,
    schema: &Value,
    rules: &[String],
    data: &Value,
) -> Result<Verdict, CustomTypeError> {
    let validator = validator(schema)?;
    let problems: Vec<String> = validator
        .iter_errors(data)
        .take(10)
        .map(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { "/".to_string() } else { at };
            format!("at {at}: {e}")
        })
        .collect();
    if !problems.is_empty() {
        return Err(CustomTypeError::DataInvalid {
            type_name: type_name.to_string(),
            problems: problems.join("; "),
        });
    }
    let input = to_val(data);
    let mut reasons = Vec::new();
    for rule in rules {
        match run_rule(rule, input.clone())? {
            RuleOutcome::True => {}
            RuleOutcome::Other(v) => reasons.push(format!("rule `{rule}` yielded {v}, not true")),
            RuleOutcome::Nothing => reasons.push(format!("rule `{rule}` yielded no value")),
            RuleOutcome::Error(e) => reasons.push(format!("rule `{rule}` failed: {e}")),
        }
    }
    Ok(Verdict {
        compliant: reasons.is_empty(),
        reasons,
    })
}

/// Steps one `pattern` match may backtrack before it fails. ECMA regexes
/// (lookaround, backreferences) need a backtracking engine; this bounds
/// each match, and the server's sandbox bounds the whole evaluation.
const PATTERN_BACKTRACK_LIMIT: usize = 100_000;

fn validator(schema: &Value) -> Result<jsonschema::Validator, CustomTypeError> {
    jsonschema::options()
        .with_pattern_options(
            jsonschema::PatternOptions::fancy_regex().backtrack_limit(PATTERN_BACKTRACK_LIMIT),
        )
        .build(schema)
        .map_err(|e| CustomTypeError::Schema(e.to_string()))
}

enum RuleOutcome {
    True,
    Other(String),
    Nothing,
    Error(String),
}

type Filter = jaq_core::compile::Filter<jaq_core::Native<data::JustLut<Val>>>;

fn compile(rule: &str) -> Result<Filter, CustomTypeError> {
    let bad = |reason: String| CustomTypeError::Rule {
        rule: rule.to_string(),
        reason,
    };
    let program = File {
        code: rule,
        path: (),
    };
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader.load(&arena, program).map_err(|errs| {
        bad(errs
            .into_iter()
            .map(|(_, e)| match e {
                jaq_core::load::Error::Io(_) => "cannot load module".to_string(),
                jaq_core::load::Error::Lex(l) => format!("syntax error ({} problem(s))", l.len()),
                jaq_core::load::Error::Parse(p) => format!("syntax error ({} problem(s))", p.len()),
            })
            .collect::<Vec<_>>()
            .join("; "))
    })?;
    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errs| {
            bad(errs
                .into_iter()
                .flat_map(|(_, es)| es)
                .map(|(name, kind)| format!("undefined {} `{name}`", kind.as_str()))
                .collect::<Vec<_>>()
                .join("; "))
        })
}

fn run_rule(rule: &str, input: Val) -> Result<RuleOutcome, CustomTypeError> {
    let filter = compile(rule)?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    let mut out = filter.id.run((ctx, input)).map(unwrap_valr);
    // The first value decides, as with `jq -e`-style checks; a rule that
    // yields more values is not run to the end.
    Ok(match out.next() {
        None => RuleOutcome::Nothing,
        Some(Ok(v)) if v == Val::from(true) => RuleOutcome::True,
        Some(Ok(v)) => RuleOutcome::Other(v.to_string()),
        Some(Err(e)) => RuleOutcome::Error(e.to_string()),
    })
}

fn to_val(v: &Value) -> Val {
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::from(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) if i.unsigned_abs() <= isize::MAX as u64 => Val::from(i as isize),
            _ => Val::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Val::from(s.clone()),
        Value::Array(a) => a.iter().map(to_val).collect(),
        Value::Object(o) => Val::obj(
            o.iter()
                .map(|(k, v)| (Val::from(k.clone()), to_val(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn person_schema() -> Value {
        json!({"type":"object","additionalProperties":true,
               "properties":{"name":{"type":"string"},"age":{"type":"integer"}}})
    }

    #[test]
    fn kosli_person_example() {
        let rules = vec![".age > 21".to_string()];
        validate_definition(&person_schema(), &rules).unwrap();
        let v = evaluate(
            "person",
            &person_schema(),
            &rules,
            &json!({"name":"Jane","age":34}),
        )
        .unwrap();
        assert!(v.compliant, "{:?}", v.reasons);
        let v = evaluate(
            "person",
            &person_schema(),
            &rules,
            &json!({"name":"Tim","age":12}),
        )
        .unwrap();
        assert!(!v.compliant);
        assert!(v.reasons[0].contains("yielded false"), "{:?}", v.reasons);
    }

    #[test]
    fn schema_failure_is_an_error_naming_the_field() {
        let e = evaluate("person", &person_schema(), &[], &json!({"age":"old"})).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("/age"), "{msg}");
    }

    #[test]
    fn rules_must_compile() {
        assert!(validate_definition(&person_schema(), &[".age >".into()]).is_err());
        let e = validate_definition(&person_schema(), &["nosuchfn".into()]).unwrap_err();
        assert!(e.to_string().contains("nosuchfn"), "{e}");
        assert!(validate_definition(&json!({"type": 12}), &[]).is_err());
    }

    #[test]
    fn no_rules_means_compliant_and_errors_fail() {
        assert!(evaluate("t", &json!({}), &[], &json!(1)).unwrap().compliant);
        let v = evaluate("t", &json!({}), &["error(\"boom\")".into()], &json!(1)).unwrap();
        assert!(!v.compliant);
        let v = evaluate("t", &json!({}), &["empty".into()], &json!(1)).unwrap();
        assert!(!v.compliant);
        let v = evaluate(
            "t",
            &json!({}),
            &[".items | length == 2".into()],
            &json!({"items":[1,2]}),
        )
        .unwrap();
        assert!(v.compliant);
    }
}

//! Property tests: no input makes the expression parser, a definition or an evaluation panic,
//! and every expression prints to text that parses back to it.

use proptest::prelude::*;
use serde_json::{Value, json};
use time::macros::datetime;

use super::action::RunStatus;
use super::definition::FlowDefinition;
use super::evaluate::RecordedRun;
use super::expression::{Expr, Function, Template};

/// Functions whose arguments may be anything, with how many they take.
const FREE: [(Function, usize); 22] = [
    (Function::Concat, 2),
    (Function::Equals, 2),
    (Function::If, 3),
    (Function::Not, 1),
    (Function::And, 2),
    (Function::Or, 3),
    (Function::Greater, 2),
    (Function::Add, 2),
    (Function::Div, 2),
    (Function::Mod, 2),
    (Function::UtcNow, 1),
    (Function::FormatDateTime, 2),
    (Function::AddDays, 2),
    (Function::String, 1),
    (Function::Int, 1),
    (Function::Float, 1),
    (Function::Json, 1),
    (Function::Coalesce, 2),
    (Function::Length, 1),
    (Function::Contains, 2),
    (Function::StartsWith, 2),
    (Function::Guid, 1),
];

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        Just(Expr::Null),
        any::<bool>().prop_map(Expr::Bool),
        any::<i64>().prop_map(Expr::Int),
        (-1e12..1e12_f64).prop_map(Expr::Float),
        any::<String>().prop_map(Expr::String),
        Just(Expr::Call {
            function: Function::TriggerBody,
            args: vec![],
            at: 0
        }),
        prop_oneof![Just("Get_row"), Just("Compose"), Just("Missing")].prop_map(|name| {
            Expr::Call {
                function: Function::Outputs,
                args: vec![Expr::String(name.into())],
                at: 0,
            }
        }),
        Just(Expr::Call {
            function: Function::Parameters,
            args: vec![Expr::String("p".into())],
            at: 0
        }),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(4, 48, 3, |inner| {
        prop_oneof![
            (0..FREE.len(), prop::collection::vec(inner.clone(), 3)).prop_map(|(n, mut args)| {
                let (function, arity) = FREE[n];
                args.truncate(arity);
                Expr::Call {
                    function,
                    args,
                    at: 0,
                }
            }),
            (inner.clone(), inner, any::<bool>()).prop_map(|(target, key, optional)| {
                Expr::Member {
                    target: Box::new(target),
                    key: Box::new(key),
                    optional,
                    at: 0,
                }
            }),
        ]
    })
}

fn context() -> RecordedRun {
    let mut run = RecordedRun::new(
        json!({"body": {"name": "Contoso", "n": 3, "list": [1, "a", null]}}),
        datetime!(2025-01-31 09:30 UTC),
    );
    run.record("Get_row", RunStatus::Succeeded, json!({"body": {"x": 1}}));
    run.record("Compose", RunStatus::Skipped, Value::Null);
    run.parameters.insert("p".into(), json!("2025-01-01"));
    run
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[@a-z{}()'\\[\\]?./ ]{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("inputs".to_owned()),
                    Just("runAfter".to_owned()),
                    Just("actions".to_owned()),
                    Just("triggers".to_owned()),
                    Just("expression".to_owned()),
                    "[A-Za-z_]{1,6}",
                ],
                inner,
                0..4
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_string_parses_or_is_refused_without_panicking(text in any::<String>()) {
        let _ = Template::parse_str(&text);
    }

    #[test]
    fn expression_like_strings_never_panic(body in "[a-zA-Z(),'?@{}\\[\\]. 0-9_-]{0,60}") {
        for text in [format!("@{body}"), format!("x @{{{body}}} y")] {
            if let Ok(template) = Template::parse_str(&text) {
                let _ = template.evaluate(&context());
            }
        }
    }

    #[test]
    fn expressions_print_as_text_that_parses_back(tree in expr()) {
        let printed = format!("@{tree}");
        let reparsed = match Template::parse_str(&printed) {
            Ok(Template::Expression(expression)) => expression.root().clone(),
            other => return Err(TestCaseError::fail(format!("{printed} gave {other:?}"))),
        };
        prop_assert_eq!(format!("@{reparsed}"), printed);
        // Evaluating may fail, but never panics.
        let _ = Template::parse_str(&format!("@{reparsed}")).map(|t| t.evaluate(&context()));
    }

    #[test]
    fn arbitrary_definitions_are_refused_without_panicking(value in json_value()) {
        let _ = FlowDefinition::parse(&value);
        let _ = FlowDefinition::parse(&json!({
            "triggers": {"manual": {"type": "Request"}},
            "actions": value,
        }));
    }
}

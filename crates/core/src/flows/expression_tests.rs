//! Parsing flow expressions: where strings are expressions, the syntax, the function table, and
//! errors that point at the character at fault.

use serde_json::json;

use super::expression::*;

fn whole(text: &str) -> Expr {
    match Template::parse_str(text) {
        Ok(Template::Expression(expression)) => expression.root().clone(),
        other => panic!("{text} did not parse as one expression: {other:?}"),
    }
}

fn error(text: &str) -> (usize, String) {
    match Template::parse_str(text) {
        Err(err) => (err.offset, err.message),
        Ok(parsed) => panic!("{text} parsed: {parsed:?}"),
    }
}

fn call(function: Function, args: Vec<Expr>, at: usize) -> Expr {
    Expr::Call { function, args, at }
}

#[test]
fn a_string_starting_with_at_is_one_expression() {
    let expr = whole("@triggerOutputs()?['body/name']");
    assert_eq!(
        expr,
        Expr::Member {
            target: Box::new(call(Function::TriggerOutputs, vec![], 1)),
            key: Box::new(Expr::String("body/name".into())),
            optional: true,
            at: 17,
        }
    );
}

#[test]
fn interpolation_splits_text_and_expressions() {
    let Ok(Template::Interpolation(segments)) =
        Template::parse_str("Hello @{triggerBody()?['name']}, at @{utcNow()}!")
    else {
        panic!("not an interpolation");
    };
    assert_eq!(segments.len(), 5);
    assert_eq!(segments[0], Segment::Text("Hello ".into()));
    let Segment::Expression(name) = &segments[1] else {
        panic!("expected an expression");
    };
    assert_eq!(name.text(), "@{triggerBody()?['name']}");
    assert_eq!(segments[2], Segment::Text(", at ".into()));
    let Segment::Expression(now) = &segments[3] else {
        panic!("expected an expression");
    };
    assert_eq!(now.root(), &call(Function::UtcNow, vec![], 38));
    assert_eq!(segments[4], Segment::Text("!".into()));
}

#[test]
fn a_lone_interpolation_is_still_an_interpolation() {
    assert!(matches!(
        Template::parse_str("@{triggerBody()}"),
        Ok(Template::Interpolation(segments)) if segments.len() == 1
    ));
}

#[test]
fn escapes_and_ordinary_at_signs_stay_text() {
    let literal = |text: &str| Template::parse_str(text).unwrap();
    assert_eq!(literal("@@home"), Template::Literal(json!("@home")));
    assert_eq!(literal("@@{not}"), Template::Literal(json!("@{not}")));
    assert_eq!(literal("a @@{b} c"), Template::Literal(json!("a @{b} c")));
    assert_eq!(
        literal("mail@contoso.com"),
        Template::Literal(json!("mail@contoso.com"))
    );
    assert_eq!(literal(" @"), Template::Literal(json!(" @")));
    assert_eq!(literal("plain"), Template::Literal(json!("plain")));
    assert_eq!(literal(""), Template::Literal(json!("")));
}

#[test]
fn literals() {
    assert_eq!(whole("@'it''s'"), Expr::String("it's".into()));
    assert_eq!(whole("@''"), Expr::String(String::new()));
    assert_eq!(whole("@42"), Expr::Int(42));
    assert_eq!(whole("@-7"), Expr::Int(-7));
    assert_eq!(whole("@1.5"), Expr::Float(1.5));
    assert_eq!(whole("@-0.25"), Expr::Float(-0.25));
    assert_eq!(whole("@true"), Expr::Bool(true));
    assert_eq!(whole("@false"), Expr::Bool(false));
    assert_eq!(whole("@null"), Expr::Null);
    assert_eq!(whole("@ 'spaced' "), Expr::String("spaced".into()));
}

#[test]
fn calls_nest_and_match_names_without_case() {
    assert_eq!(
        whole("@concat('a', string(add(1, 2)))"),
        call(
            Function::Concat,
            vec![
                Expr::String("a".into()),
                call(
                    Function::String,
                    vec![call(Function::Add, vec![Expr::Int(1), Expr::Int(2)], 20)],
                    13
                ),
            ],
            1
        )
    );
    assert_eq!(
        whole("@CONCAT('a')"),
        call(Function::Concat, vec![Expr::String("a".into())], 1)
    );
    assert_eq!(whole("@utcnow ( )"), call(Function::UtcNow, vec![], 1));
}

#[test]
fn property_access_forms() {
    let text = "@body('Get_row')['value'][0].name?['x']";
    let Expr::Member {
        target,
        key,
        optional,
        ..
    } = whole(text)
    else {
        panic!("not a member access");
    };
    assert!(optional);
    assert_eq!(*key, Expr::String("x".into()));
    let Expr::Member {
        target,
        key,
        optional,
        ..
    } = *target
    else {
        panic!("not a member access");
    };
    assert!(!optional);
    assert_eq!(*key, Expr::String("name".into()));
    let Expr::Member { target, key, .. } = *target else {
        panic!("not a member access");
    };
    assert_eq!(*key, Expr::Int(0));
    let Expr::Member { key, .. } = *target else {
        panic!("not a member access");
    };
    assert_eq!(*key, Expr::String("value".into()));
    // The key may be any expression.
    assert!(matches!(
        whole("@triggerBody()?[concat('a', 'b')]"),
        Expr::Member { key, .. } if matches!(*key, Expr::Call { function: Function::Concat, .. })
    ));
}

#[test]
fn unknown_functions_are_named_with_their_offset() {
    assert_eq!(
        error("@concatt('a')"),
        (
            1,
            "unknown function 'concatt' (did you mean 'concat'?)".into()
        )
    );
    assert_eq!(
        error("Name: @{concatt('a')}"),
        (
            8,
            "unknown function 'concatt' (did you mean 'concat'?)".into()
        )
    );
    assert_eq!(
        error("@frobnicate()"),
        (1, "unknown function 'frobnicate'".into())
    );
    assert_eq!(
        error("@variables('x')"),
        (
            1,
            "the function 'variables' is not supported in Keyway's flows".into()
        )
    );
    // Offsets count characters, not bytes.
    assert_eq!(error("é @{concatt()}").0, 4);
}

#[test]
fn syntax_errors_point_at_the_spot() {
    assert_eq!(
        error("@concat('a'"),
        (
            11,
            "expected ',' or ')' after an argument of 'concat', found the end of the expression"
                .into()
        )
    );
    assert_eq!(
        error("@concat('a' 'b')"),
        (
            12,
            "expected ',' or ')' after an argument of 'concat', found '''".into()
        )
    );
    assert_eq!(
        error("@'open"),
        (
            1,
            "unterminated string: close it with ' (a quote inside a string is written '')".into()
        )
    );
    assert_eq!(
        error("@").1,
        "the expression after '@' is empty; write '@@' for a literal @"
    );
    assert_eq!(
        error("x @{}"),
        (2, "the expression inside '@{}' is empty".into())
    );
    assert_eq!(error("x @{"), (2, "'@{' is never closed with '}'".into()));
    assert_eq!(
        error("x @{concat('a')"),
        (
            15,
            "expected '}' to close the '@{' at 2, found the end of the expression".into()
        )
    );
    assert_eq!(
        error("@concat('a') tail"),
        (
            13,
            "unexpected 'tail' after the end of the expression".into()
        )
    );
    assert_eq!(
        error("@True").1,
        "'True' is not a value: write true, false and null in lower case"
    );
    assert_eq!(
        error("@name").1,
        "'name' is not a value: call a function with 'name(…)' or quote text as 'name'"
    );
    assert_eq!(
        error("@\"x\"").1,
        "strings in expressions are written in single quotes: 'text'"
    );
    assert_eq!(error("@1.").1, "'1.' is not a number");
    assert_eq!(error("@12abc").1, "'12abc' is not a number");
    assert_eq!(
        error("@99999999999999999999").1,
        "the integer 99999999999999999999 does not fit in 64 bits"
    );
    assert_eq!(
        error("@triggerBody()?.name"),
        (14, "expected '[' after '?': write ?['name']".into())
    );
    assert_eq!(
        error("@triggerBody()['a'"),
        (
            18,
            "expected ']' to close the property access, found the end of the expression".into()
        )
    );
    assert_eq!(
        error("@triggerBody()."),
        (
            15,
            "expected a property name after '.', found the end of the expression".into()
        )
    );
    assert_eq!(
        error("@concat(,)"),
        (8, "expected a value or a function call, found ','".into())
    );
}

#[test]
fn arity_and_name_arguments_are_checked_when_saved() {
    assert_eq!(
        error("@equals(1)"),
        (1, "'equals' takes 2 arguments, 1 given".into())
    );
    assert_eq!(
        error("@concat()"),
        (1, "'concat' takes at least 1 argument, 0 given".into())
    );
    assert_eq!(
        error("@utcNow('o', 'x')"),
        (1, "'utcNow' takes 0 to 1 arguments, 2 given".into())
    );
    assert_eq!(
        error("@triggerBody(1)"),
        (1, "'triggerBody' takes 0 arguments, 1 given".into())
    );
    assert_eq!(
        error("@outputs(concat('A'))"),
        (
            1,
            "the argument of 'outputs' must be the action's name in quotes, as in outputs('Name')"
                .into()
        )
    );
    assert_eq!(
        error("@x @{parameters('')}").1,
        "'x' is not a value: call a function with 'x(…)' or quote text as 'x'"
    );
    assert_eq!(
        error("a @{parameters('')}"),
        (4, "the argument of 'parameters' must be the parameter's name in quotes, as in parameters('Name')".into())
    );
}

#[test]
fn nesting_and_length_are_bounded() {
    let deep = format!("@{}true{}", "not(".repeat(40), ")".repeat(40));
    assert!(error(&deep).1.contains("nests deeper than 32 levels"));
    let shallow = format!("@{}true{}", "not(".repeat(20), ")".repeat(20));
    assert!(Template::parse_str(&shallow).is_ok());
    let long = format!("@concat('{}')", "x".repeat(MAX_EXPRESSION_CHARS));
    assert_eq!(error(&long).0, 0);
}

#[test]
fn references_name_actions_and_parameters_with_offsets() {
    let expr = whole("@concat(outputs('A'), body('B')?['x'], actions('C'), parameters('p'))");
    let found: Vec<(ReferenceKind, String, usize)> = expr
        .references()
        .into_iter()
        .map(|r| (r.kind, r.name, r.offset))
        .collect();
    assert_eq!(
        found,
        vec![
            (ReferenceKind::Action, "A".into(), 8),
            (ReferenceKind::Action, "B".into(), 22),
            (ReferenceKind::Action, "C".into(), 39),
            (ReferenceKind::Parameter, "p".into(), 53),
        ]
    );
    let template = Template::parse(&json!({
        "a": ["x @{body('One')} y", {"b": "@outputs('Two')"}],
        "c": 3
    }))
    .unwrap();
    let names: Vec<String> = template.referenced_actions().into_iter().collect();
    assert_eq!(names, ["One", "Two"]);
}

#[test]
fn templates_keep_literals_whole_and_name_the_path_of_errors() {
    let value = json!({"n": 1, "s": "@@x", "list": [true, null]});
    assert_eq!(
        Template::parse(&value).unwrap(),
        Template::Literal(json!({"n": 1, "s": "@x", "list": [true, null]}))
    );
    let err = Template::parse(&json!({"a": {"b": ["ok", "@concatt('x')"]}})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a.b[1]: at 1: unknown function 'concatt' (did you mean 'concat'?)"
    );
    assert!(matches!(
        Template::parse(&json!({"a": "@utcNow()", "b": 2})).unwrap(),
        Template::Object(fields) if fields.len() == 2
    ));
}

#[test]
fn expressions_print_as_text_that_parses_back() {
    for text in [
        "@concat('it''s', string(add(1, -2.5)), triggerOutputs()?['body/name'])",
        "@if(equals(body('A')[0], null), coalesce(parameters('p'), 1.0), not(true))",
        "@triggerBody()['a'].b?[concat('c', 'd')]",
    ] {
        let expr = whole(text);
        let printed = format!("@{expr}");
        let reparsed = whole(&printed);
        assert_eq!(format!("@{reparsed}"), printed, "{text}");
    }
}

//! Evaluating expressions against a run: Logic Apps' null handling, equality, conversions,
//! interpolation, the run's clock, and errors that name the expression.

use serde_json::{Value, json};
use time::macros::datetime;

use super::action::RunStatus;
use super::evaluate::*;
use super::expression::Template;

fn run() -> RecordedRun {
    let mut run = RecordedRun::new(
        json!({
            "headers": {"x-ms-user-agent": "keyway"},
            "body": {
                "accountid": "5f2b1c4e-0000-0000-0000-000000000001",
                "name": "Contoso",
                "revenue": 100,
                "rating": 4.5,
                "parent": null,
                "body/odd": "literal key"
            }
        }),
        datetime!(2025-01-31 09:30:00 UTC),
    );
    run.record(
        "Get_row",
        RunStatus::Succeeded,
        json!({"statusCode": 200, "body": {"fullname": "Ada Lovelace", "tags": ["a", "b"]}}),
    );
    run.record("Compose", RunStatus::Succeeded, json!("composed"));
    run.record("Skipped_step", RunStatus::Skipped, Value::Null);
    run.parameters.insert("env".into(), json!("test"));
    run
}

fn eval(text: &str) -> Value {
    match Template::parse_str(text).unwrap().evaluate(&run()) {
        Ok(value) => value,
        Err(err) => panic!("{text}: {err}"),
    }
}

fn fails(text: &str) -> EvaluationError {
    match Template::parse_str(text).unwrap().evaluate(&run()) {
        Ok(value) => panic!("{text} gave {value}"),
        Err(err) => err,
    }
}

#[test]
fn trigger_outputs_and_the_body_path_form() {
    assert_eq!(eval("@triggerOutputs()?['body/name']"), json!("Contoso"));
    assert_eq!(eval("@triggerOutputs()['body']['revenue']"), json!(100));
    assert_eq!(eval("@triggerBody()?['rating']"), json!(4.5));
    assert_eq!(eval("@triggerBody().name"), json!("Contoso"));
    assert_eq!(eval("@triggerOutputs()?['body/missing']"), Value::Null);
    assert_eq!(eval("@triggerOutputs()?['nothing/here']"), Value::Null);
    // A key that really contains a slash wins over the path.
    assert_eq!(eval("@triggerBody()?['body/odd']"), json!("literal key"));
    assert_eq!(
        fails("@triggerOutputs()['body/missing']").message,
        "the property 'missing' of the path 'body/missing' does not exist; the object has 'accountid', 'body/odd', 'name', 'parent', 'rating', 'revenue'"
    );
}

#[test]
fn null_safe_access_is_null_and_plain_access_is_an_error() {
    assert_eq!(eval("@triggerBody()?['parent']?['name']"), Value::Null);
    assert_eq!(eval("@triggerBody()?['nope']"), Value::Null);
    let err = fails("@triggerBody()?['parent']['name']");
    assert_eq!(err.offset, 25);
    assert_eq!(
        err.message,
        "cannot read ['name'] of null; write ?['name'] to get null instead"
    );
    let err = fails("@triggerBody()['nope']");
    assert!(
        err.message
            .starts_with("the property 'nope' does not exist; the object has 'accountid'")
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the expression '@triggerBody()['nope']' failed at 14: {}",
            err.message
        )
    );
    assert_eq!(eval("@body('Get_row')?['tags'][1]"), json!("b"));
    assert_eq!(eval("@body('Get_row')?['tags']?[5]"), Value::Null);
    assert_eq!(
        fails("@body('Get_row')?['tags'][5]").message,
        "the index 5 is outside the array of 2 items"
    );
    assert_eq!(
        fails("@triggerBody()?['name'][0]").message,
        "cannot read [0] of a string"
    );
}

#[test]
fn earlier_actions_outputs_body_and_results() {
    assert_eq!(
        eval("@outputs('Get_row')?['body/fullname']"),
        json!("Ada Lovelace")
    );
    assert_eq!(eval("@body('Get_row')['fullname']"), json!("Ada Lovelace"));
    assert_eq!(eval("@outputs('Compose')"), json!("composed"));
    assert_eq!(eval("@body('Compose')"), Value::Null);
    assert_eq!(
        eval("@actions('Skipped_step')?['status']"),
        json!("Skipped")
    );
    assert_eq!(
        eval("@actions('Get_row')['outputs']['statusCode']"),
        json!(200)
    );
    assert_eq!(
        fails("@outputs('Later')").message,
        "the action 'Later' has not run in this run"
    );
    assert_eq!(
        fails("@body('Skipped_step')").message,
        "the action 'Skipped_step' was skipped, so it has no outputs"
    );
    assert_eq!(eval("@parameters('env')"), json!("test"));
    assert_eq!(
        fails("@parameters('other')").message,
        "the flow parameter 'other' has no value"
    );
}

#[test]
fn equals_compares_json_with_numbers_by_value() {
    assert_eq!(eval("@equals(1, 1.0)"), json!(true));
    assert_eq!(
        eval("@equals(triggerBody()?['revenue'], 100.0)"),
        json!(true)
    );
    assert_eq!(eval("@equals('a', 'A')"), json!(false));
    assert_eq!(eval("@equals(null, triggerBody()?['parent'])"), json!(true));
    assert_eq!(
        eval("@equals(json('{\"a\":[1,2.0]}'), json('{\"a\":[1.0,2]}'))"),
        json!(true)
    );
    assert_eq!(
        eval("@equals(json('{\"a\":1}'), json('{\"a\":1,\"b\":2}'))"),
        json!(false)
    );
    assert_eq!(eval("@equals('1', 1)"), json!(false));
}

#[test]
fn conversions() {
    assert_eq!(eval("@string(7)"), json!("7"));
    assert_eq!(eval("@string(1.5)"), json!("1.5"));
    assert_eq!(eval("@string(2.0)"), json!("2"));
    assert_eq!(eval("@string(true)"), json!("True"));
    assert_eq!(eval("@string(null)"), json!(""));
    assert_eq!(
        eval("@string(body('Get_row')?['tags'])"),
        json!("[\"a\",\"b\"]")
    );
    assert_eq!(eval("@int('42')"), json!(42));
    assert_eq!(eval("@int('-3')"), json!(-3));
    assert_eq!(eval("@int(3.0)"), json!(3));
    assert_eq!(
        fails("@int('4.2')").message,
        "'int' was given '4.2', which is not a whole number"
    );
    assert_eq!(
        fails("@int(true)").message,
        "'int' cannot convert a boolean to a whole number"
    );
    assert_eq!(eval("@float('1.25')"), json!(1.25));
    assert_eq!(eval("@float(2)"), json!(2.0));
    assert_eq!(eval("@bool('TRUE')"), json!(true));
    assert_eq!(eval("@bool(0)"), json!(false));
    assert_eq!(
        fails("@bool('yes')").message,
        "'bool' cannot convert 'yes' to true or false"
    );
    assert_eq!(eval("@json('{\"a\": [1]}')?['a'][0]"), json!(1));
    assert!(
        fails("@json('nope')")
            .message
            .starts_with("'json' was given text that is not JSON")
    );
}

#[test]
fn concat_and_interpolation_write_values_as_text() {
    assert_eq!(eval("@concat('a', 1, true, null, 2.5)"), json!("a1True2.5"));
    assert_eq!(
        eval("Revenue of @{triggerBody()?['name']}: @{triggerBody()?['revenue']}"),
        json!("Revenue of Contoso: 100")
    );
    assert_eq!(eval("@{triggerBody()?['revenue']}"), json!("100"));
    assert_eq!(eval("[@{triggerBody()?['parent']}]"), json!("[]"));
    assert_eq!(eval("@{body('Get_row')?['tags']}"), json!("[\"a\",\"b\"]"));
    assert_eq!(eval("@triggerBody()?['revenue']"), json!(100));
}

#[test]
fn logic_is_boolean_and_if_evaluates_only_its_branch() {
    assert_eq!(eval("@if(equals(1, 1), 'yes', int('boom'))"), json!("yes"));
    assert_eq!(eval("@if(false, int('boom'), 'no')"), json!("no"));
    assert_eq!(eval("@and(true, not(false), or(false, true))"), json!(true));
    assert_eq!(eval("@or(true, int('boom'))"), json!(true));
    assert_eq!(eval("@and(false, int('boom'))"), json!(false));
    let err = fails("@and(1, true)");
    assert_eq!(err.offset, 1);
    assert_eq!(
        err.message,
        "'and' expects true or false, and got an integer"
    );
    assert_eq!(
        fails("@if('x', 1, 2)").message,
        "'if' expects true or false, and got a string"
    );
    assert_eq!(
        fails("@not(null)").message,
        "'not' expects true or false, and got null"
    );
}

#[test]
fn collections_and_text() {
    assert_eq!(
        eval("@coalesce(null, triggerBody()?['parent'], 'fallback', 'later')"),
        json!("fallback")
    );
    assert_eq!(eval("@coalesce(null)"), Value::Null);
    assert_eq!(eval("@empty('')"), json!(true));
    assert_eq!(eval("@empty(null)"), json!(true));
    assert_eq!(eval("@empty(body('Get_row'))"), json!(false));
    assert_eq!(eval("@length('héllo')"), json!(5));
    assert_eq!(eval("@length(body('Get_row')?['tags'])"), json!(2));
    assert_eq!(
        fails("@length(1)").message,
        "'length' expects a string or an array, and got an integer"
    );
    assert_eq!(eval("@toLower('ÀB')"), json!("àb"));
    assert_eq!(eval("@toUpper('ab')"), json!("AB"));
    assert_eq!(eval("@trim('  x ')"), json!("x"));
    assert_eq!(
        fails("@toLower(null)").message,
        "'toLower' expects a string, and got null"
    );
    assert_eq!(eval("@contains('Contoso', 'toso')"), json!(true));
    assert_eq!(eval("@contains('Contoso', 'TOSO')"), json!(false));
    assert_eq!(
        eval("@contains(body('Get_row')?['tags'], 'b')"),
        json!(true)
    );
    assert_eq!(eval("@contains(body('Get_row'), 'fullname')"), json!(true));
    assert_eq!(eval("@startsWith('Contoso', 'CON')"), json!(true));
    assert_eq!(eval("@endsWith('Contoso', 'SO')"), json!(true));
}

#[test]
fn arithmetic_and_comparisons() {
    assert_eq!(eval("@add(1, 2)"), json!(3));
    assert_eq!(eval("@add(1, 1.5)"), json!(2.5));
    assert_eq!(eval("@sub(1, 3)"), json!(-2));
    assert_eq!(eval("@mul(4, 2.5)"), json!(10.0));
    assert_eq!(eval("@div(7, 2)"), json!(3));
    assert_eq!(eval("@div(7.0, 2)"), json!(3.5));
    assert_eq!(eval("@mod(7, 3)"), json!(1));
    assert_eq!(fails("@div(1, 0)").message, "'div' cannot divide by zero");
    assert_eq!(
        fails("@add(9223372036854775807, 1)").message,
        "'add' overflows a 64-bit integer"
    );
    assert_eq!(
        fails("@add('1', 1)").message,
        "'add' expects two numbers, and got a string and an integer"
    );
    assert_eq!(
        eval("@greater(triggerBody()?['revenue'], 99.5)"),
        json!(true)
    );
    assert_eq!(eval("@lessOrEquals(2, 2)"), json!(true));
    assert_eq!(eval("@less('a', 'b')"), json!(true));
    assert_eq!(eval("@greaterOrEquals(1, 2)"), json!(false));
    assert!(
        fails("@greater('a', 1)")
            .message
            .starts_with("'greater' compares two numbers or two strings")
    );
}

#[test]
fn time_comes_from_the_run_clock() {
    assert_eq!(eval("@utcNow()"), json!("2025-01-31T09:30:00.0000000Z"));
    assert_eq!(eval("@utcNow('yyyy-MM-dd')"), json!("2025-01-31"));
    assert_eq!(
        eval("@addDays(utcNow(), 1, 'yyyy-MM-dd')"),
        json!("2025-02-01")
    );
    assert_eq!(
        eval("@addDays('2024-02-28T00:00:00Z', 1)"),
        json!("2024-02-29T00:00:00.0000000Z")
    );
    assert_eq!(
        eval("@addDays('2024-03-01', -1, 'D')"),
        json!("Thursday, February 29, 2024")
    );
    assert_eq!(
        eval("@formatDateTime('2025-01-31T10:30:00+01:00', 'HH:mm')"),
        json!("09:30")
    );
    assert_eq!(
        eval("@formatDateTime('2025-01-31T09:30:00Z')"),
        json!("2025-01-31T09:30:00.0000000Z")
    );
    assert_eq!(
        fails("@formatDateTime('soon')").message,
        "'formatDateTime' was given 'soon', which is not an ISO 8601 timestamp"
    );
    assert_eq!(
        fails("@addDays(utcNow(), 1.5)").message,
        "'addDays' expects a whole number of days as its second argument"
    );
    assert!(
        fails("@addDays(utcNow(), 9000000000000)")
            .message
            .contains("supported range")
    );
    assert_eq!(
        fails("@utcNow('Q')").message,
        "'Q' is not a .NET standard date format"
    );
}

#[test]
fn guids_in_each_format() {
    let hyphenated = eval("@guid()");
    assert_eq!(hyphenated.as_str().map(str::len), Some(36));
    assert_eq!(eval("@length(guid('N'))"), json!(32));
    assert!(
        eval("@guid('B')")
            .as_str()
            .is_some_and(|g| g.starts_with('{') && g.ends_with('}'))
    );
    assert!(
        eval("@guid('P')")
            .as_str()
            .is_some_and(|g| g.starts_with('(') && g.len() == 38)
    );
    assert_eq!(
        fails("@guid('X')").message,
        "'X' is not a GUID format: use N, D, B or P"
    );
}

#[test]
fn templates_evaluate_every_value_inside() {
    let template = Template::parse(&json!({
        "lastname": "@triggerOutputs()?['body/name']",
        "description": "Added on @{utcNow('yyyy-MM-dd')}",
        "numbers": [1, "@add(1, 1)"],
        "fixed": true
    }))
    .unwrap();
    assert_eq!(
        template.evaluate(&run()).unwrap(),
        json!({
            "lastname": "Contoso",
            "description": "Added on 2025-01-31",
            "numbers": [1, 2],
            "fixed": true
        })
    );
}

#[test]
fn to_text_matches_interpolation() {
    assert_eq!(to_text(&json!(null)), "");
    assert_eq!(to_text(&json!(false)), "False");
    assert_eq!(to_text(&json!(1e20)), "100000000000000000000");
    assert_eq!(to_text(&json!({"a": 1})), "{\"a\":1}");
}

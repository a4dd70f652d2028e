//! `$filter` operands: literals, parameter aliases, member paths and the string functions,
//! read with winnow's token parsers.

use winnow::combinator::repeat;
use winnow::error::ErrMode;
use winnow::prelude::*;
use winnow::token::{one_of, take_till, take_while};

use super::ast::{Expr, Operand, TextFunc};
use super::error::ODataErrorKind;
use super::filter::{
    Context, Expected, Fault, Input, PResult, Primary, RESERVED, describe, fail_at, fail_here,
    found_suffix,
};
use super::literal::{Literal, classify_unquoted, starts_with_guid};

/// A literal, a parameter alias, a member path, or a function call.
pub(super) fn value_or_call(i: &mut Input<'_>, expected: Expected) -> PResult<Primary> {
    use ODataErrorKind::Unsupported;
    ws(i)?;
    let start = i.input.len();
    let Some(first) = i.input.chars().next() else {
        return fail_here(i, expected.describe());
    };
    let second = i.input.chars().nth(1);
    let literal = |literal| -> PResult<Primary> { Ok(Primary::Operand(Operand::Literal(literal))) };
    match first {
        '\'' => literal(Literal::String(string_literal(i)?)),
        '@' => alias(i, expected).map(Primary::Operand),
        '$' => {
            let word = dollar_word(i)?;
            fail_at(
                start,
                Unsupported,
                format!("'{word}' is not supported in $filter"),
            )
        }
        '-' if !second.is_some_and(|c| c.is_ascii_digit()) => fail_at(
            start,
            Unsupported,
            "the OData negation operator '-' is not supported",
        ),
        c if c.is_ascii_digit() || c == '-' => {
            let lexeme = unquoted_lexeme(i)?;
            match classify_unquoted(lexeme) {
                Ok(value) => literal(value),
                Err(detail) => fail_at(start, ODataErrorKind::Syntax, detail),
            }
        }
        c if c.is_ascii_alphabetic() || c == '_' => named(i, expected, start),
        _ => fail_here(i, expected.found(i.input)),
    }
}

/// Something that starts with a letter: a GUID, a keyword literal, a call, or a member path.
fn named(i: &mut Input<'_>, expected: Expected, start: usize) -> PResult<Primary> {
    use ODataErrorKind::{Syntax, Unsupported};
    if starts_with_guid(i.input) {
        let text = i.next_slice(36);
        return match uuid::Uuid::parse_str(text) {
            Ok(id) => Ok(Primary::Operand(Operand::Literal(Literal::Guid(id)))),
            Err(_) => fail_at(start, Syntax, format!("'{text}' is not a valid GUID")),
        };
    }
    let name = qualified_name(i)?;
    if followed_by_paren(i) {
        return call(i, name, start);
    }
    if name.contains('.') {
        return fail_at(
            start,
            Unsupported,
            format!("the qualified name '{name}' is not supported in $filter"),
        );
    }
    let value = match name {
        "null" => Some(Literal::Null),
        "true" => Some(Literal::Bool(true)),
        "false" => Some(Literal::Bool(false)),
        _ => None,
    };
    if let Some(value) = value {
        return Ok(Primary::Operand(Operand::Literal(value)));
    }
    if RESERVED.contains(&name) {
        return fail_at(
            start,
            Syntax,
            format!("{}, found '{name}'", expected.describe()),
        );
    }
    let mut path = vec![name.to_owned()];
    while i.input.starts_with('/') {
        i.next_token();
        let segment_start = i.input.len();
        if i.input.starts_with('$') {
            let word = dollar_word(i)?;
            return fail_at(
                segment_start,
                Unsupported,
                format!("'/{word}' is not supported in $filter"),
            );
        }
        let Ok(segment) = qualified_name(i) else {
            return fail_here(
                i,
                format!(
                    "expected a column or navigation property name after '/', found {}",
                    describe(i.input)
                ),
            );
        };
        if followed_by_paren(i) {
            let detail = match segment {
                "any" | "all" => format!("the OData lambda operator '{segment}' is not supported"),
                _ => format!("the OData function '{segment}' is not supported"),
            };
            return fail_at(segment_start, Unsupported, detail);
        }
        if segment.contains('.') {
            return fail_at(
                segment_start,
                Unsupported,
                format!("the type cast '{segment}' is not supported in $filter"),
            );
        }
        path.push(segment.to_owned());
    }
    Ok(Primary::Operand(Operand::Property(path)))
}

/// `contains(path,'text')`, `startswith(…)`, `endswith(…)`; every other call is refused by name.
fn call(i: &mut Input<'_>, name: &str, start: usize) -> PResult<Primary> {
    use ODataErrorKind::{Syntax, Unsupported};
    let Some(func) = TextFunc::from_name(name) else {
        let lower = name.to_ascii_lowercase();
        let detail = if TextFunc::from_name(&lower).is_some() {
            format!(
                "the OData function '{name}' is not supported: function names are lower-case, write '{lower}'"
            )
        } else if matches!(name, "any" | "all") {
            format!("the OData lambda operator '{name}' is not supported")
        } else {
            format!("the OData function '{name}' is not supported")
        };
        return fail_at(start, Unsupported, detail);
    };
    ws(i)?;
    i.next_token(); // the '(' that followed_by_paren saw
    ws(i)?;
    let first_start = i.input.len();
    let property = match value_or_call(i, Expected::FirstArgument(func))? {
        Primary::Operand(Operand::Property(path)) => path,
        _ => {
            return fail_at(
                first_start,
                Syntax,
                format!("the first argument of '{func}' must be a column name"),
            );
        }
    };
    ws(i)?;
    if !i.input.starts_with(',') {
        return fail_here(
            i,
            format!(
                "expected ',' after the first argument of '{func}'{}",
                found_suffix(i.input)
            ),
        );
    }
    i.next_token();
    ws(i)?;
    let second_start = i.input.len();
    let value = match value_or_call(i, Expected::SecondArgument(func))? {
        Primary::Operand(Operand::Literal(Literal::String(value))) => value,
        _ => {
            return fail_at(
                second_start,
                Syntax,
                format!("the second argument of '{func}' must be a string in single quotes"),
            );
        }
    };
    ws(i)?;
    if !i.input.starts_with(')') {
        return fail_here(
            i,
            format!("expected ')' to close '{func}('{}", found_suffix(i.input)),
        );
    }
    i.next_token();
    Ok(Primary::Predicate(Expr::Text {
        func,
        property,
        value,
    }))
}

/// `'text'` with `''` standing for one quote.
fn string_literal(i: &mut Input<'_>) -> PResult<String> {
    let start = i.input.len();
    i.next_token();
    let mut text = String::new();
    loop {
        let chunk: &str = take_till::<_, _, ErrMode<Fault>>(0.., '\'').parse_next(i)?;
        text.push_str(chunk);
        if i.next_token().is_none() {
            return fail_at(
                start,
                ODataErrorKind::Syntax,
                "unterminated string: close it with ' (a quote inside a string is written '')",
            );
        }
        if !i.input.starts_with('\'') {
            return Ok(text);
        }
        i.next_token();
        text.push('\'');
    }
}

/// `@name`: the value given as `&@name=…` in the query string, read as one operand.
fn alias(i: &mut Input<'_>, expected: Expected) -> PResult<Operand> {
    let start = i.input.len();
    i.next_token();
    let name: &str = take_while::<_, _, ErrMode<Fault>>(0.., is_word_char).parse_next(i)?;
    let key = format!("@{name}");
    let Some((_, value)) = i.state.aliases.iter().find(|(k, _)| *k == key) else {
        return fail_at(
            start,
            ODataErrorKind::Syntax,
            format!("the parameter alias '{key}' has no value: add &{key}=… to the query string"),
        );
    };
    // The value is parsed on its own, without aliases, so aliases cannot refer to each other.
    let context = Context {
        text: value,
        aliases: &[],
        depth: 0,
        terms: 0,
        after: "",
    };
    let mut inner = Input {
        input: value.as_str(),
        state: context,
    };
    let parsed = value_or_call(&mut inner, expected).and_then(|primary| {
        ws(&mut inner)?;
        match primary {
            Primary::Operand(operand) if inner.input.is_empty() => Ok(operand),
            _ => fail_here(&inner, "expected a single column name or value"),
        }
    });
    parsed.or_else(|mode| {
        let (kind, detail) = match mode {
            ErrMode::Backtrack(fault) | ErrMode::Cut(fault) => (fault.kind, fault.detail),
            ErrMode::Incomplete(_) => (ODataErrorKind::Syntax, None),
        };
        let detail = detail.unwrap_or_else(|| "expected a single column name or value".into());
        fail_at(
            start,
            kind,
            format!("in the value of the parameter alias '{key}': {detail}"),
        )
    })
}

/// `name` or `Namespace.Name`: identifiers joined by dots.
fn qualified_name<'t>(i: &mut Input<'t>) -> PResult<&'t str> {
    (identifier, repeat::<_, _, (), _, _>(0.., ('.', identifier)))
        .take()
        .parse_next(i)
}

fn identifier<'t>(i: &mut Input<'t>) -> PResult<&'t str> {
    (
        one_of(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(0.., is_word_char),
    )
        .take()
        .parse_next(i)
}

/// A number, GUID, date or date-time as one word, classified afterwards.
fn unquoted_lexeme<'t>(i: &mut Input<'t>) -> PResult<&'t str> {
    take_while(1.., |c: char| {
        is_word_char(c) || matches!(c, '.' | ':' | '+' | '-')
    })
    .parse_next(i)
}

/// `$it`, `$root`, `$count`…
fn dollar_word<'t>(i: &mut Input<'t>) -> PResult<&'t str> {
    take_while(1.., |c: char| c == '$' || is_word_char(c)).parse_next(i)
}

pub(super) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The identifier at the cursor, without consuming it.
pub(super) fn peek_word<'t>(i: &Input<'t>) -> Option<&'t str> {
    let text: &'t str = i.input;
    let end = text.find(|c: char| !is_word_char(c)).unwrap_or(text.len());
    text.get(..end)
        .filter(|word| word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
}

fn followed_by_paren(i: &Input<'_>) -> bool {
    i.input.trim_start().starts_with('(')
}

pub(super) fn ws(i: &mut Input<'_>) -> PResult<()> {
    take_while(0.., char::is_whitespace).void().parse_next(i)
}

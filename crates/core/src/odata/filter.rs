//! The `$filter` grammar: winnow's Pratt `expression` for `and`/`or`, `not` and comparisons
//! by hand (see `term` for why), limits, and error positions. Operands live in `operand`.

use winnow::combinator::{Infix, expression};
use winnow::error::{ErrMode, ParserError};
use winnow::prelude::*;
use winnow::stream::Stateful;

use super::ast::{CompareOp, Expr, Operand, TextFunc};
use super::error::{ODataError, ODataErrorKind};
use super::literal::Literal;
use super::operand::{is_word_char, peek_word, value_or_call, ws};

/// Longest decoded `$filter` accepted, in bytes.
pub const MAX_FILTER_BYTES: usize = 8 * 1024;
/// Deepest nesting of parentheses and `not`: the parser recurses, so this bounds the stack.
pub const MAX_FILTER_DEPTH: usize = 64;
/// Most conditions (comparisons, functions, bare values) in one `$filter`.
pub const MAX_FILTER_TERMS: usize = 200;

const OPTION: &str = "$filter";

/// Words that are operators in OData, so they cannot start a value.
pub(super) const RESERVED: [&str; 17] = [
    "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "add", "sub", "mul", "div", "divby",
    "mod", "has", "in",
];

/// Valid OData operators Keyway does not evaluate.
const UNSUPPORTED_OPERATORS: [&str; 8] = ["add", "sub", "mul", "div", "divby", "mod", "has", "in"];

/// What the parser carries besides the text: the budget it enforces and what came last.
#[derive(Debug)]
pub(super) struct Context<'t> {
    pub(super) text: &'t str,
    pub(super) aliases: &'t [(String, String)],
    pub(super) depth: usize,
    pub(super) terms: usize,
    /// The operator or bracket just read, so "expected a condition after 'and'" can name it.
    pub(super) after: &'static str,
}

pub(super) type Input<'t> = Stateful<&'t str, Context<'t>>;

/// A parse failure: where (as bytes left to read) and, when a parser knew, what went wrong.
#[derive(Debug)]
pub(super) struct Fault {
    pub(super) remaining: usize,
    pub(super) kind: ODataErrorKind,
    pub(super) detail: Option<String>,
}

impl<'t> ParserError<Input<'t>> for Fault {
    type Inner = Self;

    fn from_input(input: &Input<'t>) -> Self {
        Self {
            remaining: input.input.len(),
            kind: ODataErrorKind::Syntax,
            detail: None,
        }
    }

    fn into_inner(self) -> Result<Self::Inner, Self> {
        Ok(self)
    }
}

pub(super) type PResult<T> = Result<T, ErrMode<Fault>>;

/// A definite error at a position: cut, so no alternative is tried after it.
pub(super) fn fail_at<T>(
    remaining: usize,
    kind: ODataErrorKind,
    detail: impl Into<String>,
) -> PResult<T> {
    Err(ErrMode::Cut(Fault {
        remaining,
        kind,
        detail: Some(detail.into()),
    }))
}

pub(super) fn fail_here<T>(i: &Input<'_>, detail: impl Into<String>) -> PResult<T> {
    fail_at(i.input.len(), ODataErrorKind::Syntax, detail)
}

/// Parses decoded `$filter` text; `@name` parameter aliases resolve from `aliases`.
pub(crate) fn parse_filter(text: &str, aliases: &[(String, String)]) -> Result<Expr, ODataError> {
    if text.len() > MAX_FILTER_BYTES {
        return Err(ODataError::unsupported(format!(
            "The $filter is {} bytes long; at most {MAX_FILTER_BYTES} are supported",
            text.len()
        )));
    }
    if text.trim().is_empty() {
        return Err(ODataError::syntax(
            "Syntax error in $filter: the filter is empty; leave $filter out to read every row",
        ));
    }
    let context = Context {
        text,
        aliases,
        depth: 0,
        terms: 0,
        after: "",
    };
    let mut input = Input {
        input: text,
        state: context,
    };
    whole_filter(&mut input).map_err(|mode| {
        let fault = match mode {
            ErrMode::Backtrack(fault) | ErrMode::Cut(fault) => fault,
            ErrMode::Incomplete(_) => Fault {
                remaining: 0,
                kind: ODataErrorKind::Syntax,
                detail: None,
            },
        };
        let offset = text.len().saturating_sub(fault.remaining);
        let detail = fault.detail.unwrap_or_else(|| {
            format!("unexpected {}", describe(text.get(offset..).unwrap_or("")))
        });
        ODataError::at(fault.kind, OPTION, position(text, fault.remaining), &detail)
    })
}

fn whole_filter(i: &mut Input<'_>) -> PResult<Expr> {
    let expr = logical(i)?;
    ws(i)?;
    if i.input.is_empty() {
        return Ok(expr);
    }
    let found = describe(i.input);
    if i.input.starts_with(')') {
        return fail_here(i, "unexpected ')' with no matching '('");
    }
    let word = peek_word(i).unwrap_or("");
    let lower = word.to_ascii_lowercase();
    let detail = if CompareOp::from_keyword(word).is_some() {
        format!("unexpected {found}: comparisons cannot be chained, join them with 'and'")
    } else if word != lower && RESERVED.contains(&lower.as_str()) {
        format!("unexpected {found}: operators are lower-case, write '{lower}'")
    } else {
        format!(
            "unexpected {found}: expected an operator such as 'eq', 'and' or 'or', or the end of the filter"
        )
    };
    fail_here(i, detail)
}

/// `and`/`or` with winnow's Pratt parser: `and` binds tighter, both associate to the left.
fn logical(i: &mut Input<'_>) -> PResult<Expr> {
    expression(term).infix(logical_operator).parse_next(i)
}

fn logical_operator<'t>(i: &mut Input<'t>) -> PResult<Infix<Input<'t>, Expr, ErrMode<Fault>>> {
    ws(i)?;
    match peek_word(i) {
        Some("and") => {
            i.next_slice(3);
            i.state.after = "and";
            Ok(Infix::Left(2, |_, a, b| {
                Ok(Expr::And(Box::new(a), Box::new(b)))
            }))
        }
        Some("or") => {
            i.next_slice(2);
            i.state.after = "or";
            Ok(Infix::Left(1, |_, a, b| {
                Ok(Expr::Or(Box::new(a), Box::new(b)))
            }))
        }
        _ => Err(ErrMode::from_input(i)),
    }
}

/// What the parser read before a value, to word the error when the value is missing.
#[derive(Clone, Copy)]
pub(super) enum Expected {
    Condition(&'static str),
    Value(CompareOp),
    FirstArgument(TextFunc),
    SecondArgument(TextFunc),
}

impl Expected {
    pub(super) fn describe(self) -> String {
        match self {
            Self::Condition("") => "expected a condition".into(),
            Self::Condition(after) => format!("expected a condition after '{after}'"),
            Self::Value(op) => format!("expected a value after '{op}'"),
            Self::FirstArgument(func) => {
                format!("expected a column name as the first argument of '{func}'")
            }
            Self::SecondArgument(func) => {
                format!("expected a string in single quotes as the second argument of '{func}'")
            }
        }
    }

    pub(super) fn found(self, rest: &str) -> String {
        if rest.is_empty() {
            self.describe()
        } else {
            format!("{}, found {}", self.describe(), describe(rest))
        }
    }
}

/// A primary before any comparison: a plain operand, or something that is already a condition.
/// `Negation` is kept apart because OData's `not` binds tighter than `eq`.
pub(super) enum Primary {
    Operand(Operand),
    Predicate(Expr),
    Negation(Expr),
}

impl Primary {
    fn into_condition(self) -> Result<Expr, Operand> {
        match self {
            Self::Operand(operand) => Err(operand),
            Self::Predicate(expr) | Self::Negation(expr) => Ok(expr),
        }
    }
}

/// One condition: a primary, optionally compared with another. Comparisons live here, not in
/// the Pratt table, because the AST compares operands only; `not` lives in `primary` so that
/// `not a eq 1` can be refused with a hint instead of silently meaning `not (a eq 1)`.
fn term(i: &mut Input<'_>) -> PResult<Expr> {
    let expected = Expected::Condition(i.state.after);
    ws(i)?;
    let start = i.input.len();
    let left = primary(i, expected)?;
    let is_leaf = matches!(
        left,
        Primary::Operand(_) | Primary::Predicate(Expr::Text { .. })
    );
    ws(i)?;
    let op_start = i.input.len();
    let word = peek_word(i);
    let expr = if let Some(op) = word.and_then(CompareOp::from_keyword) {
        i.next_slice(op.keyword().len());
        let right = primary(i, Expected::Value(op))?;
        compare(left, op, right, op_start)?
    } else if let Some(word) = word.filter(|w| UNSUPPORTED_OPERATORS.contains(w)) {
        return Err(unsupported_operator(op_start, word));
    } else {
        match left.into_condition() {
            Ok(expr) => expr,
            Err(operand) => Expr::Value(operand),
        }
    };
    if is_leaf {
        count_term(i, start)?;
    }
    Ok(expr)
}

#[cold]
#[inline(never)]
fn unsupported_operator(remaining: usize, word: &str) -> ErrMode<Fault> {
    let detail = format!("the OData operator '{word}' is not supported");
    ErrMode::Cut(Fault {
        remaining,
        kind: ODataErrorKind::Unsupported,
        detail: Some(detail),
    })
}

fn compare(left: Primary, op: CompareOp, right: Primary, op_start: usize) -> PResult<Expr> {
    use ODataErrorKind::{Syntax, Unsupported};
    let negated = matches!(left, Primary::Negation(_));
    let is_equality = matches!(op, CompareOp::Eq | CompareOp::Ne);
    match (left.into_condition(), right.into_condition()) {
        (Err(left), Err(right)) => Ok(Expr::Compare { left, op, right }),
        // `contains(name,'x') eq true` and `not isdisabled eq false` are common and exact.
        (Ok(condition), Err(Operand::Literal(Literal::Bool(value))))
        | (Err(Operand::Literal(Literal::Bool(value))), Ok(condition))
            if is_equality =>
        {
            let holds = (op == CompareOp::Eq) == value;
            Ok(if holds {
                condition
            } else {
                Expr::Not(Box::new(condition))
            })
        }
        (Ok(_), Err(_)) if negated => fail_at(
            op_start,
            Syntax,
            format!(
                "'not' binds tighter than '{op}', so this compares (not …) with a value; to negate a comparison write not (… {op} …)"
            ),
        ),
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => fail_at(
            op_start,
            Syntax,
            format!(
                "a condition can only be compared with true or false, using 'eq' or 'ne' (found '{op}')"
            ),
        ),
        (Ok(_), Ok(_)) => fail_at(
            op_start,
            Unsupported,
            format!("comparing two conditions with '{op}' is not supported"),
        ),
    }
}

// `primary`, `parenthesized` and `negation` recurse through `logical`, so their frames are kept
// small: error text is built in separate cold functions.
fn primary(i: &mut Input<'_>, expected: Expected) -> PResult<Primary> {
    ws(i)?;
    if i.input.starts_with('(') {
        parenthesized(i)
    } else if peek_word(i) == Some("not") {
        negation(i)
    } else {
        value_or_call(i, expected)
    }
}

fn parenthesized(i: &mut Input<'_>) -> PResult<Primary> {
    let start = i.input.len();
    enter(i, start)?;
    i.next_token();
    i.state.after = "(";
    let inner = logical(i)?;
    ws(i)?;
    if !i.input.starts_with(')') {
        return Err(unclosed_parenthesis(i, start));
    }
    i.next_token();
    i.state.depth -= 1;
    // `(name) eq 'x'` is legal OData: a parenthesized operand is still an operand.
    Ok(match inner {
        Expr::Value(operand) => Primary::Operand(operand),
        expr => Primary::Predicate(expr),
    })
}

#[cold]
#[inline(never)]
fn unclosed_parenthesis(i: &Input<'_>, start: usize) -> ErrMode<Fault> {
    let opened = position(i.state.text, start);
    let detail = format!(
        "expected ')' to close the '(' at position {opened}{}",
        found_suffix(i.input)
    );
    ErrMode::Cut(Fault {
        remaining: i.input.len(),
        kind: ODataErrorKind::Syntax,
        detail: Some(detail),
    })
}

fn negation(i: &mut Input<'_>) -> PResult<Primary> {
    let start = i.input.len();
    enter(i, start)?;
    i.next_slice(3);
    let inner = match primary(i, Expected::Condition("not"))? {
        Primary::Operand(operand) => {
            count_term(i, start)?;
            Expr::Value(operand)
        }
        Primary::Predicate(expr) => {
            if matches!(expr, Expr::Text { .. }) {
                count_term(i, start)?;
            }
            expr
        }
        Primary::Negation(expr) => expr,
    };
    i.state.depth -= 1;
    Ok(Primary::Negation(Expr::Not(Box::new(inner))))
}

/// Counts one more level of nesting, refusing the 65th before recursing into it.
fn enter(i: &mut Input<'_>, start: usize) -> PResult<()> {
    if i.state.depth >= MAX_FILTER_DEPTH {
        return fail_at(
            start,
            ODataErrorKind::Unsupported,
            format!(
                "nesting parentheses or 'not' more than {MAX_FILTER_DEPTH} levels deep is not supported"
            ),
        );
    }
    i.state.depth += 1;
    Ok(())
}

fn count_term(i: &mut Input<'_>, start: usize) -> PResult<()> {
    i.state.terms += 1;
    if i.state.terms > MAX_FILTER_TERMS {
        return fail_at(
            start,
            ODataErrorKind::Unsupported,
            format!("a $filter with more than {MAX_FILTER_TERMS} conditions is not supported"),
        );
    }
    Ok(())
}

/// The token at the start of `rest`, quoted for an error message.
pub(super) fn describe(rest: &str) -> String {
    let Some(first) = rest.chars().next() else {
        return "the end of the filter".into();
    };
    let token: String = if is_word_char(first) || first == '-' || first == '$' || first == '@' {
        rest.chars()
            .take_while(|&c| is_word_char(c) || matches!(c, '.' | ':' | '+' | '-' | '$' | '@'))
            .take(40)
            .collect()
    } else if first == '\'' {
        let string: String = rest
            .chars()
            .skip(1)
            .take_while(|&c| c != '\'')
            .take(40)
            .collect();
        return format!("the string '{string}'");
    } else {
        first.to_string()
    };
    format!("'{token}'")
}

pub(super) fn found_suffix(rest: &str) -> String {
    if rest.is_empty() {
        String::new()
    } else {
        format!(", found {}", describe(rest))
    }
}

/// The 0-based character position of a fault, from the bytes left to read.
fn position(text: &str, remaining: usize) -> usize {
    let offset = text.len().saturating_sub(remaining);
    text.get(..offset).map_or(0, |read| read.chars().count())
}

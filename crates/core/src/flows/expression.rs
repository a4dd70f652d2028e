//! The flow expression language: a documented subset of the Logic Apps / Power Automate workflow
//! definition language, parsed once when a flow is saved.
//!
//! # Where expressions appear
//!
//! Every JSON string in a trigger's or an action's inputs is read as follows:
//!
//! - `"@expr"` — the whole string is one expression and keeps the value's type
//!   (`"@triggerOutputs()?['body/revenue']"` is a number when the column is).
//! - `"text @{expr} text"` — string interpolation: each `@{…}` is evaluated and written into the
//!   text (strings as they are, `null` as nothing, `true`/`false` as `True`/`False`, numbers in
//!   their shortest form, arrays and objects as compact JSON). A string that is only `"@{expr}"`
//!   is interpolated too, so it is always a string.
//! - `"@@…"` at the start stands for a literal `@` (`"@@home"` is the text `@home`), and `@@{`
//!   anywhere stands for a literal `@{`. Any other `@` is ordinary text (`"a@b.com"`).
//!
//! # Syntax
//!
//! - Literals: strings in single quotes with `''` for a quote (`'it''s'`), integers (`42`,
//!   `-7`, 64-bit), decimals (`1.5`), `true`, `false`, `null`.
//! - Function calls with nested arguments: `concat('a', string(add(1, 2)))`. Function names are
//!   matched without regard to case, as Logic Apps does.
//! - Property access after any value: `?['name']` (null-safe: `null` when the value is null or
//!   has no such property), `['name']` (an error when missing), `.name`, and array items
//!   `[0]`/`?[0]`. The key may be any expression.
//! - The path form of Power Automate's connector outputs: `?['body/name']` reads the property
//!   `body/name` when it exists, otherwise walks `body` then `name`.
//!
//! # Functions
//!
//! | function | what |
//! |---|---|
//! | `triggerOutputs()`, `triggerBody()` | the trigger's outputs (`{"body": …}`), and their `body` |
//! | `outputs('Action')`, `body('Action')` | an earlier action's outputs, and their `body` |
//! | `actions('Action')` | `{name, status, outputs}` of an earlier action |
//! | `parameters('name')` | a parameter declared in the definition's `parameters` |
//! | `concat(a, …)` | the arguments as text, joined |
//! | `equals(a, b)` | JSON equality; numbers compare by value (`1` equals `1.0`); strings by case |
//! | `if(cond, a, b)` | `a` when `cond` is true, else `b` (only the chosen branch is evaluated) |
//! | `not(b)`, `and(b, b, …)`, `or(b, b, …)` | boolean logic; arguments must be booleans |
//! | `greater`, `greaterOrEquals`, `less`, `lessOrEquals` | compare two numbers or two strings |
//! | `add`, `sub`, `mul`, `div`, `mod` | arithmetic; integers stay integers (`div` truncates) |
//! | `utcNow(format?)` | the run's clock, default format `yyyy-MM-ddTHH:mm:ss.fffffffZ` |
//! | `formatDateTime(ts, format?)`, `addDays(ts, n, format?)` | timestamps, in UTC |
//! | `string(v)`, `int(v)`, `float(v)`, `bool(v)` | conversions (`int('42')`, `string(7)`) |
//! | `json(text)` | parse JSON text |
//! | `coalesce(a, …)` | the first argument that is not null |
//! | `empty(v)`, `length(v)` | emptiness of a string, array or object; length of a string or array |
//! | `toLower(s)`, `toUpper(s)`, `trim(s)` | text case and surrounding white space |
//! | `contains(c, v)` | substring (case-sensitive), array item, or object key |
//! | `startsWith(s, p)`, `endsWith(s, p)` | prefix and suffix, ignoring case |
//! | `guid(format?)` | a new GUID; format `N`, `D` (default), `B` or `P` |
//!
//! Date formats are .NET's: the standard `o`, `s`, `u`, `d`, `D`, `t`, `T`, `g`, `G`, `f`, `F`,
//! `M`, `Y`, `R`, and custom patterns from `yyyy`, `yy`, `MMMM`, `MMM`, `MM`, `M`, `dddd`, `ddd`,
//! `dd`, `d`, `HH`, `H`, `hh`, `h`, `mm`, `m`, `ss`, `s`, `f`…`fffffff`, `F`…`FFFFFFF`, `tt`,
//! `t`, `K`, `zzz`, `zz`, `z`, quoted text and `\x` escapes.
//!
//! Not supported (refused when the flow is saved): variables, loops and their `item()`/`items()`,
//! `workflow()`, `result()`, `xml`/`xpath`, and any other function. An action named in
//! `outputs`/`body`/`actions` must be a quoted name that runs before the expression's action.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;
use winnow::error::{ErrMode, ParserError};
use winnow::prelude::*;
use winnow::stream::Stateful;
use winnow::token::take_while;

use super::error::{DefinitionError, JsonPath, did_you_mean};

/// Longest expression string accepted, in characters (Logic Apps' limit too).
pub const MAX_EXPRESSION_CHARS: usize = 8192;
/// Deepest nesting of calls and property keys: the parser recurses, so this bounds the stack.
pub const MAX_EXPRESSION_DEPTH: usize = 32;

/// A function of the supported subset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    TriggerOutputs,
    TriggerBody,
    Outputs,
    Body,
    Actions,
    Parameters,
    Concat,
    Equals,
    If,
    Not,
    And,
    Or,
    Greater,
    GreaterOrEquals,
    Less,
    LessOrEquals,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    UtcNow,
    FormatDateTime,
    AddDays,
    String,
    Int,
    Float,
    Bool,
    Json,
    Coalesce,
    Empty,
    Length,
    ToLower,
    ToUpper,
    Trim,
    Contains,
    StartsWith,
    EndsWith,
    Guid,
}

/// Name, least and most arguments (`None`: any number).
const FUNCTIONS: [(Function, &str, usize, Option<usize>); 39] = [
    (Function::TriggerOutputs, "triggerOutputs", 0, Some(0)),
    (Function::TriggerBody, "triggerBody", 0, Some(0)),
    (Function::Outputs, "outputs", 1, Some(1)),
    (Function::Body, "body", 1, Some(1)),
    (Function::Actions, "actions", 1, Some(1)),
    (Function::Parameters, "parameters", 1, Some(1)),
    (Function::Concat, "concat", 1, None),
    (Function::Equals, "equals", 2, Some(2)),
    (Function::If, "if", 3, Some(3)),
    (Function::Not, "not", 1, Some(1)),
    (Function::And, "and", 2, None),
    (Function::Or, "or", 2, None),
    (Function::Greater, "greater", 2, Some(2)),
    (Function::GreaterOrEquals, "greaterOrEquals", 2, Some(2)),
    (Function::Less, "less", 2, Some(2)),
    (Function::LessOrEquals, "lessOrEquals", 2, Some(2)),
    (Function::Add, "add", 2, Some(2)),
    (Function::Sub, "sub", 2, Some(2)),
    (Function::Mul, "mul", 2, Some(2)),
    (Function::Div, "div", 2, Some(2)),
    (Function::Mod, "mod", 2, Some(2)),
    (Function::UtcNow, "utcNow", 0, Some(1)),
    (Function::FormatDateTime, "formatDateTime", 1, Some(2)),
    (Function::AddDays, "addDays", 2, Some(3)),
    (Function::String, "string", 1, Some(1)),
    (Function::Int, "int", 1, Some(1)),
    (Function::Float, "float", 1, Some(1)),
    (Function::Bool, "bool", 1, Some(1)),
    (Function::Json, "json", 1, Some(1)),
    (Function::Coalesce, "coalesce", 1, None),
    (Function::Empty, "empty", 1, Some(1)),
    (Function::Length, "length", 1, Some(1)),
    (Function::ToLower, "toLower", 1, Some(1)),
    (Function::ToUpper, "toUpper", 1, Some(1)),
    (Function::Trim, "trim", 1, Some(1)),
    (Function::Contains, "contains", 2, Some(2)),
    (Function::StartsWith, "startsWith", 2, Some(2)),
    (Function::EndsWith, "endsWith", 2, Some(2)),
    (Function::Guid, "guid", 0, Some(1)),
];

/// Functions of the full language that Keyway does not evaluate, named so the refusal says so
/// rather than calling them unknown.
const UNSUPPORTED: [&str; 14] = [
    "variables",
    "item",
    "items",
    "iterationIndexes",
    "workflow",
    "result",
    "xml",
    "xpath",
    "split",
    "replace",
    "substring",
    "formatNumber",
    "convertTimeZone",
    "listCallbackUrl",
];

impl Function {
    /// The function called `name`, matched without regard to case.
    pub fn from_name(name: &str) -> Option<Function> {
        FUNCTIONS
            .iter()
            .find(|(_, known, _, _)| known.eq_ignore_ascii_case(name))
            .map(|(function, _, _, _)| *function)
    }

    /// The name as the documentation writes it.
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    fn arity(self) -> (usize, Option<usize>) {
        let (_, _, least, most) = self.entry();
        (least, most)
    }

    fn entry(self) -> (Function, &'static str, usize, Option<usize>) {
        FUNCTIONS
            .iter()
            .copied()
            .find(|(function, _, _, _)| *function == self)
            .unwrap_or((self, "?", 0, None))
    }

    /// Whether the first argument names an action of the flow.
    pub fn names_action(self) -> bool {
        matches!(self, Function::Outputs | Function::Body | Function::Actions)
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed expression. `at` is the character offset of the node in the JSON string it was
/// read from, so evaluation errors can point at the spot too.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Call {
        function: Function,
        args: Vec<Expr>,
        at: usize,
    },
    /// `target[key]`, `target?[key]` or `target.key`.
    Member {
        target: Box<Expr>,
        key: Box<Expr>,
        optional: bool,
        at: usize,
    },
}

impl Expr {
    /// Calls `visit` with every node, parents before children.
    pub fn walk<'a>(&'a self, visit: &mut impl FnMut(&'a Expr)) {
        visit(self);
        match self {
            Expr::Call { args, .. } => args.iter().for_each(|arg| arg.walk(visit)),
            Expr::Member { target, key, .. } => {
                target.walk(visit);
                key.walk(visit);
            }
            _ => {}
        }
    }

    /// The flow names this expression reads: actions (`outputs('X')`, `body('X')`,
    /// `actions('X')`) and parameters (`parameters('p')`), each with its offset.
    pub fn references(&self) -> Vec<Reference> {
        let mut found = Vec::new();
        self.walk(&mut |node| {
            if let Expr::Call { function, args, at } = node {
                let kind = match function {
                    f if f.names_action() => ReferenceKind::Action,
                    Function::Parameters => ReferenceKind::Parameter,
                    _ => return,
                };
                if let Some(Expr::String(name)) = args.first() {
                    found.push(Reference {
                        kind,
                        name: name.clone(),
                        offset: *at,
                    });
                }
            }
        });
        found
    }
}

/// Writes the expression back as text that parses to the same tree.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Null => f.write_str("null"),
            Expr::Bool(b) => write!(f, "{b}"),
            Expr::Int(n) => write!(f, "{n}"),
            Expr::Float(x) if x.fract() == 0.0 && x.is_finite() => write!(f, "{x:.1}"),
            Expr::Float(x) => write!(f, "{x}"),
            Expr::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Expr::Call { function, args, .. } => {
                write!(f, "{function}(")?;
                for (n, arg) in args.iter().enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{arg}")?;
                }
                f.write_str(")")
            }
            Expr::Member {
                target,
                key,
                optional,
                ..
            } => write!(f, "{target}{}[{key}]", if *optional { "?" } else { "" }),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferenceKind {
    Action,
    Parameter,
}

/// A name an expression reads, and where (character offset in its JSON string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub kind: ReferenceKind,
    pub name: String,
    pub offset: usize,
}

/// One expression as written in the definition (`@…` or `@{…}`), with its tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Expression {
    text: String,
    root: Expr,
}

impl Expression {
    /// The expression as written, with its `@` or `@{…}`.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn root(&self) -> &Expr {
        &self.root
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A piece of an interpolated string.
#[derive(Clone, Debug, PartialEq)]
pub enum Segment {
    Text(String),
    Expression(Expression),
}

/// A JSON value from a definition with its expressions parsed: what an action's inputs are
/// until a run evaluates them.
#[derive(Clone, Debug, PartialEq)]
pub enum Template {
    /// No expression anywhere inside (escapes such as `@@` already applied).
    Literal(Value),
    /// `"@expr"`: the value keeps its type.
    Expression(Expression),
    /// `"text @{expr} text"`: always a string.
    Interpolation(Vec<Segment>),
    Array(Vec<Template>),
    Object(Vec<(String, Template)>),
}

impl Template {
    /// Parses every string inside `value`; errors carry the JSON path below `value`.
    pub fn parse(value: &Value) -> Result<Template, DefinitionError> {
        Template::parse_at(value, &JsonPath::root())
    }

    /// Parses one string: a literal, one expression, or an interpolation.
    pub fn parse_str(text: &str) -> Result<Template, ExpressionError> {
        parse_string(text)
    }

    pub(crate) fn parse_at(value: &Value, path: &JsonPath) -> Result<Template, DefinitionError> {
        match value {
            Value::String(text) => parse_string(text)
                .map_err(|err| DefinitionError::in_expression(path, err.offset, err.message)),
            Value::Array(items) => {
                let items = items
                    .iter()
                    .enumerate()
                    .map(|(n, item)| Template::parse_at(item, &path.index(n)))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if items.iter().all(Template::is_literal) {
                    Template::Literal(Value::Array(
                        items
                            .into_iter()
                            .filter_map(Template::into_literal)
                            .collect(),
                    ))
                } else {
                    Template::Array(items)
                })
            }
            Value::Object(map) => {
                let fields = map
                    .iter()
                    .map(|(key, item)| Ok((key.clone(), Template::parse_at(item, &path.key(key))?)))
                    .collect::<Result<Vec<_>, DefinitionError>>()?;
                Ok(if fields.iter().all(|(_, t)| t.is_literal()) {
                    Template::Literal(Value::Object(
                        fields
                            .into_iter()
                            .filter_map(|(k, t)| Some((k, t.into_literal()?)))
                            .collect(),
                    ))
                } else {
                    Template::Object(fields)
                })
            }
            other => Ok(Template::Literal(other.clone())),
        }
    }

    pub fn is_literal(&self) -> bool {
        matches!(self, Template::Literal(_))
    }

    fn into_literal(self) -> Option<Value> {
        match self {
            Template::Literal(value) => Some(value),
            _ => None,
        }
    }

    /// Calls `visit` with each expression and the JSON path (below `path`) of its string.
    pub fn visit_expressions<'a>(
        &'a self,
        path: &JsonPath,
        visit: &mut impl FnMut(&JsonPath, &'a Expression),
    ) {
        match self {
            Template::Literal(_) => {}
            Template::Expression(expression) => visit(path, expression),
            Template::Interpolation(segments) => {
                for segment in segments {
                    if let Segment::Expression(expression) = segment {
                        visit(path, expression);
                    }
                }
            }
            Template::Array(items) => {
                for (n, item) in items.iter().enumerate() {
                    item.visit_expressions(&path.index(n), visit);
                }
            }
            Template::Object(fields) => {
                for (key, item) in fields {
                    item.visit_expressions(&path.key(key), visit);
                }
            }
        }
    }

    /// Names of the actions this template reads.
    pub fn referenced_actions(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        self.visit_expressions(&JsonPath::root(), &mut |_, expression| {
            for reference in expression.root().references() {
                if reference.kind == ReferenceKind::Action {
                    names.insert(reference.name);
                }
            }
        });
        names
    }
}

/// A syntax error inside one JSON string: the character offset and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at {offset}: {message}")]
pub struct ExpressionError {
    pub offset: usize,
    pub message: String,
}

type Input<'t> = Stateful<&'t str, State<'t>>;

#[derive(Debug)]
struct State<'t> {
    /// The whole JSON string, so offsets count from its start.
    full: &'t str,
    depth: usize,
}

/// A parse failure: where (as bytes left to read) and, when a parser knew, what went wrong.
#[derive(Debug)]
struct Fault {
    remaining: usize,
    detail: Option<String>,
}

impl<'t> ParserError<Input<'t>> for Fault {
    type Inner = Self;

    fn from_input(input: &Input<'t>) -> Self {
        Self {
            remaining: input.input.len(),
            detail: None,
        }
    }

    fn into_inner(self) -> Result<Self::Inner, Self> {
        Ok(self)
    }
}

type PResult<T> = Result<T, ErrMode<Fault>>;

fn fail_at<T>(remaining: usize, detail: impl Into<String>) -> PResult<T> {
    Err(ErrMode::Cut(Fault {
        remaining,
        detail: Some(detail.into()),
    }))
}

fn fail_here<T>(i: &Input<'_>, detail: impl Into<String>) -> PResult<T> {
    fail_at(i.input.len(), detail)
}

/// Character offset of the cursor in the whole string.
fn offset_of(full: &str, remaining: usize) -> usize {
    let read = full.len().saturating_sub(remaining);
    full.get(..read).map_or(0, |text| text.chars().count())
}

fn here(i: &Input<'_>) -> usize {
    offset_of(i.state.full, i.input.len())
}

fn to_error(full: &str, mode: ErrMode<Fault>) -> ExpressionError {
    let fault = match mode {
        ErrMode::Backtrack(fault) | ErrMode::Cut(fault) => fault,
        ErrMode::Incomplete(_) => Fault {
            remaining: 0,
            detail: None,
        },
    };
    let read = full.len().saturating_sub(fault.remaining);
    let detail = fault
        .detail
        .unwrap_or_else(|| format!("unexpected {}", describe(full.get(read..).unwrap_or(""))));
    ExpressionError {
        offset: offset_of(full, fault.remaining),
        message: detail,
    }
}

/// Reads one JSON string of a definition.
fn parse_string(text: &str) -> Result<Template, ExpressionError> {
    if text.chars().count() > MAX_EXPRESSION_CHARS {
        return Err(ExpressionError {
            offset: 0,
            message: format!(
                "the string is longer than {MAX_EXPRESSION_CHARS} characters, the most an expression may be"
            ),
        });
    }
    if let Some(rest) = text.strip_prefix('@')
        && !rest.starts_with('@')
        && !rest.starts_with('{')
    {
        return whole_expression(text, rest).map(Template::Expression);
    }
    interpolation(text)
}

fn whole_expression(full: &str, body: &str) -> Result<Expression, ExpressionError> {
    let mut i = Input {
        input: body,
        state: State { full, depth: 0 },
    };
    let parse = |i: &mut Input<'_>| -> PResult<Expr> {
        ws(i)?;
        if i.input.is_empty() {
            return fail_here(
                i,
                "the expression after '@' is empty; write '@@' for a literal @",
            );
        }
        let root = expr(i)?;
        ws(i)?;
        if !i.input.is_empty() {
            return fail_here(
                i,
                format!(
                    "unexpected {} after the end of the expression",
                    describe(i.input)
                ),
            );
        }
        Ok(root)
    };
    let root = parse(&mut i).map_err(|mode| to_error(full, mode))?;
    Ok(Expression {
        text: full.to_owned(),
        root,
    })
}

fn interpolation(full: &str) -> Result<Template, ExpressionError> {
    let mut segments = Vec::new();
    let mut text = String::new();
    let mut pos = 0;
    if full.starts_with("@@") {
        text.push('@');
        pos = 2;
    }
    while let Some(found) = full.get(pos..).and_then(|rest| rest.find('@')) {
        let at = pos + found;
        let rest = full.get(at..).unwrap_or("");
        text.push_str(full.get(pos..at).unwrap_or(""));
        if rest.starts_with("@@{") {
            text.push_str("@{");
            pos = at + 3;
        } else if let Some(body) = rest.strip_prefix("@{") {
            if !text.is_empty() {
                segments.push(Segment::Text(std::mem::take(&mut text)));
            }
            let (expression, end) = embedded_expression(full, body)?;
            segments.push(Segment::Expression(expression));
            pos = end;
        } else {
            text.push('@');
            pos = at + 1;
        }
    }
    text.push_str(full.get(pos..).unwrap_or(""));
    if segments.is_empty() {
        return Ok(Template::Literal(Value::String(text)));
    }
    if !text.is_empty() {
        segments.push(Segment::Text(text));
    }
    Ok(Template::Interpolation(segments))
}

/// `@{expr}`: parses from just after `@{` and returns the byte position after the `}`.
fn embedded_expression(full: &str, body: &str) -> Result<(Expression, usize), ExpressionError> {
    let opened = full.len() - body.len() - 2;
    let mut i = Input {
        input: body,
        state: State { full, depth: 0 },
    };
    let parse = |i: &mut Input<'_>| -> PResult<Expr> {
        ws(i)?;
        if i.input.starts_with('}') {
            return fail_at(full.len() - opened, "the expression inside '@{}' is empty");
        }
        if i.input.is_empty() {
            return fail_at(full.len() - opened, "'@{' is never closed with '}'");
        }
        let root = expr(i)?;
        ws(i)?;
        if i.input.starts_with('}') {
            i.next_token();
            return Ok(root);
        }
        fail_here(
            i,
            format!(
                "expected '}}' to close the '@{{' at {}, found {}",
                offset_of(full, full.len() - opened),
                describe(i.input)
            ),
        )
    };
    let root = parse(&mut i).map_err(|mode| to_error(full, mode))?;
    let end = full.len() - i.input.len();
    Ok((
        Expression {
            text: full.get(opened..end).unwrap_or("").to_owned(),
            root,
        },
        end,
    ))
}

/// A value followed by any number of property accesses.
fn expr(i: &mut Input<'_>) -> PResult<Expr> {
    ws(i)?;
    if i.state.depth >= MAX_EXPRESSION_DEPTH {
        return fail_here(
            i,
            format!("the expression nests deeper than {MAX_EXPRESSION_DEPTH} levels"),
        );
    }
    let mut value = primary(i)?;
    loop {
        let at = here(i);
        let optional = i.input.starts_with("?[");
        if optional || i.input.starts_with('[') {
            i.next_slice(if optional { 2 } else { 1 });
            i.state.depth += 1;
            let key = expr(i)?;
            i.state.depth -= 1;
            ws(i)?;
            if !i.input.starts_with(']') {
                return fail_here(
                    i,
                    format!(
                        "expected ']' to close the property access, found {}",
                        describe(i.input)
                    ),
                );
            }
            i.next_token();
            value = Expr::Member {
                target: Box::new(value),
                key: Box::new(key),
                optional,
                at,
            };
        } else if i.input.starts_with('.') {
            i.next_token();
            let name: &str = take_while::<_, _, ErrMode<Fault>>(0.., is_name_char).parse_next(i)?;
            if name.is_empty() {
                return fail_here(
                    i,
                    format!(
                        "expected a property name after '.', found {}",
                        describe(i.input)
                    ),
                );
            }
            value = Expr::Member {
                target: Box::new(value),
                key: Box::new(Expr::String(name.to_owned())),
                optional: false,
                at,
            };
        } else if i.input.starts_with('?') {
            return fail_here(i, "expected '[' after '?': write ?['name']");
        } else {
            return Ok(value);
        }
    }
}

fn primary(i: &mut Input<'_>) -> PResult<Expr> {
    let start = i.input.len();
    let mut chars = i.input.chars();
    let (first, second) = (chars.next(), chars.next());
    match first {
        Some('\'') => string_literal(i).map(Expr::String),
        Some(c)
            if c.is_ascii_digit() || (c == '-' && second.is_some_and(|d| d.is_ascii_digit())) =>
        {
            number(i)
        }
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            let name: &str = take_while::<_, _, ErrMode<Fault>>(1.., is_name_char).parse_next(i)?;
            ws(i)?;
            if i.input.starts_with('(') {
                return call(i, name, start);
            }
            match name {
                "true" => Ok(Expr::Bool(true)),
                "false" => Ok(Expr::Bool(false)),
                "null" => Ok(Expr::Null),
                _ if matches!(
                    name.to_ascii_lowercase().as_str(),
                    "true" | "false" | "null"
                ) =>
                {
                    fail_at(
                        start,
                        format!(
                            "'{name}' is not a value: write true, false and null in lower case"
                        ),
                    )
                }
                _ => fail_at(
                    start,
                    format!(
                        "'{name}' is not a value: call a function with '{name}(…)' or quote text as '{name}'"
                    ),
                ),
            }
        }
        Some('"') => fail_here(
            i,
            "strings in expressions are written in single quotes: 'text'",
        ),
        _ => fail_here(
            i,
            format!(
                "expected a value or a function call, found {}",
                describe(i.input)
            ),
        ),
    }
}

fn call(i: &mut Input<'_>, name: &str, start: usize) -> PResult<Expr> {
    let at = offset_of(i.state.full, start);
    let Some(function) = Function::from_name(name) else {
        let detail = if UNSUPPORTED
            .iter()
            .any(|known| known.eq_ignore_ascii_case(name))
        {
            format!("the function '{name}' is not supported in Keyway's flows")
        } else {
            match did_you_mean(name, FUNCTIONS.iter().map(|(_, known, _, _)| *known)) {
                Some(close) => format!("unknown function '{name}' (did you mean '{close}'?)"),
                None => format!("unknown function '{name}'"),
            }
        };
        return fail_at(start, detail);
    };
    i.next_token(); // the '('
    i.state.depth += 1;
    let mut args = Vec::new();
    ws(i)?;
    if i.input.starts_with(')') {
        i.next_token();
    } else {
        loop {
            args.push(expr(i)?);
            ws(i)?;
            match i.input.chars().next() {
                Some(',') => {
                    i.next_token();
                }
                Some(')') => {
                    i.next_token();
                    break;
                }
                _ => {
                    return fail_here(
                        i,
                        format!(
                            "expected ',' or ')' after an argument of '{}', found {}",
                            function.name(),
                            describe(i.input)
                        ),
                    );
                }
            }
        }
    }
    i.state.depth -= 1;
    check_arity(function, args.len(), start)?;
    if (function.names_action() || function == Function::Parameters)
        && !matches!(args.first(), Some(Expr::String(name)) if !name.is_empty())
    {
        let what = if function == Function::Parameters {
            "parameter"
        } else {
            "action"
        };
        return fail_at(
            start,
            format!(
                "the argument of '{}' must be the {what}'s name in quotes, as in {}('Name')",
                function.name(),
                function.name()
            ),
        );
    }
    Ok(Expr::Call { function, args, at })
}

fn check_arity(function: Function, given: usize, start: usize) -> PResult<()> {
    let (least, most) = function.arity();
    let expected = match most {
        Some(most) if most == least => plural(least),
        Some(most) => format!("{least} to {most} arguments"),
        None => format!("at least {}", plural(least)),
    };
    if given < least || most.is_some_and(|most| given > most) {
        return fail_at(
            start,
            format!("'{}' takes {expected}, {given} given", function.name()),
        );
    }
    Ok(())
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 argument".into()
    } else {
        format!("{n} arguments")
    }
}

/// `'text'` with `''` standing for one quote.
fn string_literal(i: &mut Input<'_>) -> PResult<String> {
    let start = i.input.len();
    i.next_token();
    let mut text = String::new();
    loop {
        let chunk: &str = take_while::<_, _, ErrMode<Fault>>(0.., |c| c != '\'').parse_next(i)?;
        text.push_str(chunk);
        if i.next_token().is_none() {
            return fail_at(
                start,
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

fn number(i: &mut Input<'_>) -> PResult<Expr> {
    let start = i.input.len();
    let lexeme: &str = (
        winnow::combinator::opt('-'),
        take_while(1.., |c: char| c.is_ascii_digit()),
        winnow::combinator::opt(('.', take_while(0.., |c: char| c.is_ascii_digit()))),
    )
        .take()
        .parse_next(i)?;
    if lexeme.ends_with('.')
        || i.input
            .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    {
        return fail_at(
            start,
            format!("'{lexeme}{}' is not a number", word_at(i.input)),
        );
    }
    if lexeme.contains('.') {
        return match lexeme.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Expr::Float(x)),
            _ => fail_at(start, format!("'{lexeme}' is not a number")),
        };
    }
    match lexeme.parse::<i64>() {
        Ok(n) => Ok(Expr::Int(n)),
        Err(_) => fail_at(
            start,
            format!("the integer {lexeme} does not fit in 64 bits"),
        ),
    }
}

fn word_at(rest: &str) -> &str {
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    rest.get(..end).unwrap_or("")
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

fn ws(i: &mut Input<'_>) -> PResult<()> {
    take_while(0.., char::is_whitespace).void().parse_next(i)
}

/// The token at the cursor, for messages: `'concatt'`, `')'`, or "the end of the expression".
fn describe(rest: &str) -> String {
    let Some(first) = rest.chars().next() else {
        return "the end of the expression".into();
    };
    let token: String = if is_name_char(first) {
        rest.chars()
            .take_while(|&c| is_name_char(c))
            .take(40)
            .collect()
    } else {
        first.to_string()
    };
    format!("'{token}'")
}

//! A `$filter` evaluated in memory against one row as the Web API shows it (a JSON object, lookups
//! as `_x_value`): how a flow's Dataverse trigger checks its `filterexpression` against the row
//! that fired it, with Dataverse's semantics where they show — text compared without regard to
//! case, anything compared with null (other than `eq`/`ne`) false.

use std::cmp::Ordering;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::{CompareOp, Expr, Literal, Operand, TextFunc};

/// A filter that cannot be evaluated against a row (a navigation path, say).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

/// A value as the evaluator compares it.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    Guid(Uuid),
    Instant(OffsetDateTime),
    Day(Date),
}

impl Expr {
    /// Does `row` match the filter? Member paths name the row's own columns (`name`,
    /// `_parentcustomerid_value`; a lookup may also be named without the underscores).
    pub fn matches(&self, row: &Map<String, Value>) -> Result<bool, EvalError> {
        Ok(match self {
            Expr::And(a, b) => a.matches(row)? && b.matches(row)?,
            Expr::Or(a, b) => a.matches(row)? || b.matches(row)?,
            Expr::Not(inner) => !inner.matches(row)?,
            Expr::Compare { left, op, right } => {
                compare(&operand(left, row)?, *op, &operand(right, row)?)
            }
            Expr::Text {
                func,
                property,
                value,
            } => match column(property, row)? {
                Scalar::Text(text) => {
                    let (text, value) = (text.to_lowercase(), value.to_lowercase());
                    match func {
                        TextFunc::Contains => text.contains(&value),
                        TextFunc::StartsWith => text.starts_with(&value),
                        TextFunc::EndsWith => text.ends_with(&value),
                    }
                }
                _ => false,
            },
            Expr::Value(o) => operand(o, row)? == Scalar::Bool(true),
        })
    }
}

fn operand(o: &Operand, row: &Map<String, Value>) -> Result<Scalar, EvalError> {
    match o {
        Operand::Property(path) => column(path, row),
        Operand::Literal(l) => Ok(match l {
            Literal::Null => Scalar::Null,
            Literal::Bool(b) => Scalar::Bool(*b),
            Literal::Int(n) => Scalar::Number(*n as f64),
            Literal::Decimal(d) => Scalar::Number(
                d.parse()
                    .map_err(|_| EvalError(format!("'{d}' is not a number")))?,
            ),
            Literal::String(s) => Scalar::Text(s.clone()),
            Literal::Guid(g) => Scalar::Guid(*g),
            Literal::DateTime(t) => Scalar::Instant(*t),
            Literal::Date(d) => Scalar::Day(*d),
        }),
    }
}

fn column(path: &[String], row: &Map<String, Value>) -> Result<Scalar, EvalError> {
    let [name] = path else {
        return Err(EvalError(format!(
            "'{}' follows a relationship: a trigger's filter can only test the row's own columns",
            path.join("/")
        )));
    };
    let value = row
        .get(name)
        .or_else(|| row.get(&format!("_{name}_value")))
        .unwrap_or(&Value::Null);
    Ok(match value {
        Value::Null => Scalar::Null,
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Number(n) => Scalar::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Scalar::Text(s.clone()),
        other => Scalar::Text(other.to_string()),
    })
}

/// Text read as the kind of value it is compared with: a GUID, a timestamp, a date, a number.
fn coerce(text: &str, like: &Scalar) -> Scalar {
    let parsed = match like {
        Scalar::Guid(_) => Uuid::parse_str(text).ok().map(Scalar::Guid),
        Scalar::Instant(_) => OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .map(Scalar::Instant),
        Scalar::Day(_) => text
            .get(..10)
            .and_then(|d| {
                Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok()
            })
            .map(Scalar::Day),
        Scalar::Number(_) => text.parse().ok().map(Scalar::Number),
        _ => None,
    };
    parsed.unwrap_or_else(|| Scalar::Text(text.to_string()))
}

fn order(a: &Scalar, b: &Scalar) -> Option<Ordering> {
    match (a, b) {
        (Scalar::Bool(x), Scalar::Bool(y)) => Some(x.cmp(y)),
        (Scalar::Number(x), Scalar::Number(y)) => x.partial_cmp(y),
        (Scalar::Text(x), Scalar::Text(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Scalar::Guid(x), Scalar::Guid(y)) => Some(x.cmp(y)),
        (Scalar::Instant(x), Scalar::Instant(y)) => Some(x.cmp(y)),
        (Scalar::Day(x), Scalar::Day(y)) => Some(x.cmp(y)),
        (Scalar::Instant(x), Scalar::Day(y)) => Some(x.date().cmp(y)),
        (Scalar::Day(x), Scalar::Instant(y)) => Some(x.cmp(&y.date())),
        (Scalar::Text(t), other) if !matches!(other, Scalar::Text(_)) => {
            let c = coerce(t, other);
            if matches!(c, Scalar::Text(_)) {
                None
            } else {
                order(&c, other)
            }
        }
        (other, Scalar::Text(_)) if !matches!(other, Scalar::Text(_)) => {
            order(b, a).map(Ordering::reverse)
        }
        _ => None,
    }
}

fn compare(a: &Scalar, op: CompareOp, b: &Scalar) -> bool {
    let null = |s: &Scalar| *s == Scalar::Null;
    match (null(a), null(b)) {
        (true, true) => return matches!(op, CompareOp::Eq | CompareOp::Ge | CompareOp::Le),
        (true, false) | (false, true) => return op == CompareOp::Ne,
        _ => {}
    }
    let Some(ord) = order(a, b) else {
        // Values of kinds that never compare (a text with a number that is not one).
        return op == CompareOp::Ne;
    };
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row() -> Map<String, Value> {
        json!({
            "name": "Contoso Ltd",
            "revenue": 1500.5,
            "numberofemployees": 12,
            "statecode": 0,
            "donotemail": true,
            "description": null,
            "_ownerid_value": "5b3e0c4e-52a8-4f0b-9d8e-2c1f1f0d3a11",
            "createdon": "2025-03-04T10:00:00Z",
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn check(filter: &str) -> bool {
        Expr::parse(filter).unwrap().matches(&row()).unwrap()
    }

    #[test]
    fn comparisons_follow_dataverse() {
        assert!(check("name eq 'contoso ltd'"), "text ignores case");
        assert!(check("revenue gt 1000 and numberofemployees le 12"));
        assert!(!check("revenue gt 2000"));
        assert!(check("statecode eq 0 or revenue lt 0"));
        assert!(check("not (statecode eq 1)"));
        assert!(check("donotemail"));
        assert!(check("description eq null"));
        assert!(!check("description ne null"));
        assert!(!check("description gt 'a'"), "null compares with nothing");
        assert!(check(
            "_ownerid_value eq 5b3e0c4e-52a8-4f0b-9d8e-2c1f1f0d3a11"
        ));
        assert!(check("ownerid eq 5B3E0C4E-52A8-4F0B-9D8E-2C1F1F0D3A11"));
        assert!(check("createdon gt 2025-03-01T00:00:00Z"));
        assert!(check("createdon ge 2025-03-04"));
        assert!(check(
            "contains(name,'SO') and startswith(name,'con') and endswith(name,'LTD')"
        ));
        assert!(
            !check("contains(revenue,'1')"),
            "text functions on text only"
        );
        assert!(check("missingcolumn eq null"));
    }

    #[test]
    fn navigation_paths_are_refused() {
        let e = Expr::parse("primarycontactid/fullname eq 'a'")
            .unwrap()
            .matches(&row())
            .unwrap_err();
        assert!(e.0.contains("primarycontactid/fullname"), "{e}");
    }
}

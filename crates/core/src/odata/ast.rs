//! The `$filter` syntax tree, shaped to compile straight to SQL, and its canonical OData text.

use std::fmt;

use super::literal::Literal;

/// A parsed `$filter`. Comparisons hold operands (a member path or a literal), never nested
/// boolean expressions, so each leaf maps to one SQL predicate.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `left op right`, e.g. `statecode eq 0` or `null eq name`.
    Compare {
        left: Operand,
        op: CompareOp,
        right: Operand,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// `contains(property,'value')` and its siblings.
    Text {
        func: TextFunc,
        property: Vec<String>,
        value: String,
    },
    /// A bare boolean member or literal, e.g. `$filter=isdisabled` or `$filter=true`.
    Value(Operand),
}

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// A member path: `name`, `_primarycontactid_value`, or `primarycontactid/fullname`.
    Property(Vec<String>),
    Literal(Literal),
}

/// The comparison operators OData spells as lower-case words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// The string functions Dataverse supports in `$filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TextFunc {
    Contains,
    StartsWith,
    EndsWith,
}

impl CompareOp {
    pub const ALL: [CompareOp; 6] = [Self::Eq, Self::Ne, Self::Gt, Self::Ge, Self::Lt, Self::Le];

    /// The OData keyword: `eq`, `ne`, `gt`, `ge`, `lt`, `le`.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Gt => "gt",
            Self::Ge => "ge",
            Self::Lt => "lt",
            Self::Le => "le",
        }
    }

    /// The operator for an exact (lower-case) keyword.
    pub fn from_keyword(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.keyword() == word)
    }
}

impl TextFunc {
    pub const ALL: [TextFunc; 3] = [Self::Contains, Self::StartsWith, Self::EndsWith];

    /// The OData function name: `contains`, `startswith`, `endswith`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Contains => "contains",
            Self::StartsWith => "startswith",
            Self::EndsWith => "endswith",
        }
    }

    /// The function for an exact (lower-case) name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|func| func.name() == name)
    }
}

impl Expr {
    /// Every member path the filter references, in order of appearance (with repeats), so the
    /// caller can check each one against the table's metadata before compiling to SQL.
    pub fn properties(&self) -> Vec<&[String]> {
        let mut found = Vec::new();
        self.collect_properties(&mut found);
        found
    }

    fn collect_properties<'a>(&'a self, found: &mut Vec<&'a [String]>) {
        match self {
            Self::Compare { left, right, .. } => {
                left.collect_property(found);
                right.collect_property(found);
            }
            Self::And(a, b) | Self::Or(a, b) => {
                a.collect_properties(found);
                b.collect_properties(found);
            }
            Self::Not(inner) => inner.collect_properties(found),
            Self::Text { property, .. } => found.push(property),
            Self::Value(operand) => operand.collect_property(found),
        }
    }

    /// How tightly the printed form binds: `or` 1, `and` 2, everything else 3.
    fn precedence(&self) -> u8 {
        match self {
            Self::Or(..) => 1,
            Self::And(..) => 2,
            _ => 3,
        }
    }

    /// Prints `self`, wrapped in parentheses when the context binds tighter than it does.
    fn fmt_within(&self, f: &mut fmt::Formatter<'_>, context: u8) -> fmt::Result {
        if self.precedence() < context {
            write!(f, "(")?;
            self.fmt_bare(f)?;
            write!(f, ")")
        } else {
            self.fmt_bare(f)
        }
    }

    fn fmt_bare(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Compare { left, op, right } => write!(f, "{left} {} {right}", op.keyword()),
            // Both are left-associative: a right child of the same level needs parentheses.
            Self::Or(a, b) => {
                a.fmt_within(f, 1)?;
                write!(f, " or ")?;
                b.fmt_within(f, 2)
            }
            Self::And(a, b) => {
                a.fmt_within(f, 2)?;
                write!(f, " and ")?;
                b.fmt_within(f, 3)
            }
            // `not` binds tighter than a comparison, so `not (a eq 1)` keeps its parentheses.
            Self::Not(inner) => match inner.as_ref() {
                Self::Value(_) | Self::Text { .. } | Self::Not(_) => write!(f, "not {inner}"),
                _ => write!(f, "not ({inner})"),
            },
            Self::Text {
                func,
                property,
                value,
            } => {
                write!(
                    f,
                    "{}({},{})",
                    func.name(),
                    Path(property),
                    Literal::quoted(value)
                )
            }
            Self::Value(operand) => write!(f, "{operand}"),
        }
    }
}

/// Canonical OData text for the filter: lower-case keywords, single spaces, the fewest
/// parentheses that keep the tree, literals in the form the parser reads back. It is the
/// decoded `$filter` value: percent-encode it before putting it in a URL.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_within(f, 0)
    }
}

impl Operand {
    fn collect_property<'a>(&'a self, found: &mut Vec<&'a [String]>) {
        if let Self::Property(path) = self {
            found.push(path);
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Property(path) => write!(f, "{}", Path(path)),
            Self::Literal(literal) => write!(f, "{literal}"),
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

impl fmt::Display for TextFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A member path printed with `/` between segments.
struct Path<'a>(&'a [String]);

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, segment) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("/")?;
            }
            f.write_str(segment)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(name: &str) -> Operand {
        Operand::Property(name.split('/').map(String::from).collect())
    }

    fn eq(name: &str, value: i64) -> Expr {
        Expr::Compare {
            left: prop(name),
            op: CompareOp::Eq,
            right: Operand::Literal(Literal::Int(value)),
        }
    }

    #[test]
    fn display_keeps_only_needed_parentheses() {
        let a = || Box::new(eq("a", 1));
        let b = || Box::new(eq("b", 2));
        let c = || Box::new(eq("c", 3));
        let left = Expr::Or(Box::new(Expr::Or(a(), b())), c());
        assert_eq!(left.to_string(), "a eq 1 or b eq 2 or c eq 3");
        let right = Expr::Or(a(), Box::new(Expr::Or(b(), c())));
        assert_eq!(right.to_string(), "a eq 1 or (b eq 2 or c eq 3)");
        let mixed = Expr::And(Box::new(Expr::Or(a(), b())), c());
        assert_eq!(mixed.to_string(), "(a eq 1 or b eq 2) and c eq 3");
        let tight = Expr::Or(a(), Box::new(Expr::And(b(), c())));
        assert_eq!(tight.to_string(), "a eq 1 or b eq 2 and c eq 3");
    }

    #[test]
    fn display_of_not_parenthesizes_comparisons_only() {
        assert_eq!(Expr::Not(Box::new(eq("a", 1))).to_string(), "not (a eq 1)");
        assert_eq!(
            Expr::Not(Box::new(Expr::Value(prop("isdisabled")))).to_string(),
            "not isdisabled"
        );
        let text = Expr::Text {
            func: TextFunc::Contains,
            property: vec!["primarycontactid".into(), "fullname".into()],
            value: "O'Neil".into(),
        };
        assert_eq!(
            Expr::Not(Box::new(text)).to_string(),
            "not contains(primarycontactid/fullname,'O''Neil')"
        );
    }

    #[test]
    fn properties_lists_every_member_path_in_order() {
        let text = Expr::Text {
            func: TextFunc::StartsWith,
            property: vec!["name".into()],
            value: "A".into(),
        };
        let expr = Expr::And(
            Box::new(Expr::Compare {
                left: Operand::Literal(Literal::Null),
                op: CompareOp::Ne,
                right: prop("primarycontactid/fullname"),
            }),
            Box::new(Expr::Or(
                Box::new(text),
                Box::new(Expr::Not(Box::new(Expr::Value(prop("isdisabled"))))),
            )),
        );
        let paths: Vec<Vec<&str>> = expr
            .properties()
            .iter()
            .map(|p| p.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            paths,
            vec![
                vec!["primarycontactid", "fullname"],
                vec!["name"],
                vec!["isdisabled"]
            ]
        );
    }

    #[test]
    fn keywords_map_both_ways() {
        for op in CompareOp::ALL {
            assert_eq!(CompareOp::from_keyword(op.keyword()), Some(op));
        }
        for func in TextFunc::ALL {
            assert_eq!(TextFunc::from_name(func.name()), Some(func));
        }
        assert_eq!(CompareOp::from_keyword("EQ"), None);
    }
}

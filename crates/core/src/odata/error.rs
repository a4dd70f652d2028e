//! The one error the OData query-option parser returns: malformed text, or valid OData we refuse.

use std::fmt;

/// Why a query string was refused. Dataverse answers both with `0x80060888` (HTTP 400); the
/// HTTP layer does that mapping, the kind only tells a malformed query from an unsupported one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ODataErrorKind {
    /// The text is not valid OData (unbalanced parentheses, a dangling operator, a bad literal…).
    Syntax,
    /// Valid OData that Keyway does not serve (`$skip`, `tolower`, lambdas, limits exceeded…).
    Unsupported,
}

/// A query-option error whose message names the option, and for `$filter` the position
/// (0-based, in characters of the decoded text) and the token at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ODataError {
    pub kind: ODataErrorKind,
    pub message: String,
}

impl ODataError {
    pub(crate) fn syntax(message: impl Into<String>) -> Self {
        Self {
            kind: ODataErrorKind::Syntax,
            message: message.into(),
        }
    }

    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        Self {
            kind: ODataErrorKind::Unsupported,
            message: message.into(),
        }
    }

    /// An error found inside an option's text at a character position, worded so a reader can
    /// find the spot: "Syntax error at position 14 in $filter: expected a value after 'eq'".
    pub(crate) fn at(kind: ODataErrorKind, option: &str, position: usize, detail: &str) -> Self {
        let message = match kind {
            ODataErrorKind::Syntax => {
                format!("Syntax error at position {position} in {option}: {detail}")
            }
            ODataErrorKind::Unsupported => {
                format!(
                    "{} (at position {position} in {option})",
                    Capitalized(detail)
                )
            }
        };
        Self { kind, message }
    }
}

/// Writes a detail phrase as the start of a sentence.
struct Capitalized<'a>(&'a str);

impl fmt::Display for Capitalized<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        match chars.next() {
            Some(first) => write!(f, "{}{}", first.to_uppercase(), chars.as_str()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_messages_name_the_option_and_position() {
        let err = ODataError::at(ODataErrorKind::Syntax, "$filter", 14, "expected a value");
        assert_eq!(
            err.to_string(),
            "Syntax error at position 14 in $filter: expected a value"
        );
    }

    #[test]
    fn unsupported_messages_start_a_sentence() {
        let err = ODataError::at(
            ODataErrorKind::Unsupported,
            "$filter",
            0,
            "the OData function 'tolower' is not supported",
        );
        assert_eq!(
            err.message,
            "The OData function 'tolower' is not supported (at position 0 in $filter)"
        );
    }
}

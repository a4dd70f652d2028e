//! The error a flow definition is refused with: the JSON path of the offending value and, for an
//! expression, the character offset inside that string, so an editor can point at the spot.

use std::fmt;

/// Why a definition was refused at save time. `path` names the value in the definition
/// (`actions.Create_row.inputs.parameters.item/name`), `offset` the character (0-based) inside
/// that JSON string where the expression error is, when the fault is in an expression.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct DefinitionError {
    pub path: String,
    pub offset: Option<usize>,
    pub message: String,
}

impl DefinitionError {
    pub(crate) fn at(path: &JsonPath, message: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            offset: None,
            message: message.into(),
        }
    }

    pub(crate) fn in_expression(
        path: &JsonPath,
        offset: usize,
        message: impl Into<String>,
    ) -> Self {
        Self {
            path: path.to_string(),
            offset: Some(offset),
            message: message.into(),
        }
    }
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        if let Some(offset) = self.offset {
            write!(f, "at {offset}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Where a value sits in the definition: keys joined by dots, array items as `[i]`. Keys are
/// written as they are (`item/name`), since that is how the designer shows them too.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonPath(String);

impl JsonPath {
    pub fn root() -> Self {
        Self(String::new())
    }

    pub fn key(&self, key: &str) -> Self {
        if self.0.is_empty() {
            Self(key.to_owned())
        } else {
            Self(format!("{}.{key}", self.0))
        }
    }

    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The closest of `candidates` to a misspelt `word`, when close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|candidate| {
            (
                edit_distance(&word, &candidate.to_ascii_lowercase()),
                candidate,
            )
        })
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            let deletion = previous[j + 1] + 1;
            let insertion = current[j] + 1;
            current.push(substitution.min(deletion).min(insertion));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_path_and_offset() {
        let path = JsonPath::root()
            .key("actions")
            .key("Create_row")
            .key("inputs");
        let err = DefinitionError::in_expression(&path, 14, "unknown function 'concatt'");
        assert_eq!(
            err.to_string(),
            "actions.Create_row.inputs: at 14: unknown function 'concatt'"
        );
        let err = DefinitionError::at(&JsonPath::root().key("a").index(2), "bad");
        assert_eq!(err.to_string(), "a[2]: bad");
    }

    #[test]
    fn typos_find_their_word() {
        let names = ["concat", "contains", "coalesce"];
        assert_eq!(did_you_mean("concatt", names), Some("concat"));
        assert_eq!(did_you_mean("Coalesse", names), Some("coalesce"));
        assert_eq!(did_you_mean("banana", names), None);
    }
}

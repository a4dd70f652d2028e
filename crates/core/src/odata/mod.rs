//! OData query options for the Dataverse-compatible Web API: parsing `$select`, `$filter`,
//! `$orderby`, `$top`, `$count`, `$expand` and `$skiptoken` into values the store can compile.
//! Pure syntax: names are checked against the table's metadata by the caller.

mod ast;
mod error;
mod eval;
mod filter;
mod literal;
mod operand;
mod query;

#[cfg(test)]
mod filter_tests;
#[cfg(test)]
mod operand_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod query_tests;

pub use ast::{CompareOp, Expr, Operand, TextFunc};
pub use error::{ODataError, ODataErrorKind};
pub use eval::EvalError;
pub use filter::{MAX_FILTER_BYTES, MAX_FILTER_DEPTH, MAX_FILTER_TERMS};
pub use literal::Literal;
pub use query::{Expand, MAX_QUERY_BYTES, OrderBy, QueryOptions};

impl Expr {
    /// Parses decoded `$filter` text (no percent-decoding, no parameter aliases: use
    /// [`QueryOptions::parse`] for a raw query string).
    pub fn parse(filter: &str) -> Result<Expr, ODataError> {
        filter::parse_filter(filter, &[])
    }
}

//! Dataverse in the domain's words: table and column metadata, the built-in tables every
//! environment starts with, and (later) privileges, access depths and the audit trail.

pub mod audit;
pub mod authz;
pub mod error;
pub mod metadata;
pub mod privileges;
pub mod record;
pub mod relationships;
pub mod security;
pub mod seed;
pub mod system_tables;

//! The one integration-test binary (one link for every test, as kanidm advises): a real Keyway
//! on an ephemeral port, over HTTPS with its own CA, on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod assertions;
mod connections;
mod environments;
mod flows;
mod flows_http_tokens;
mod flows_recurrence;
mod flows_run_only;
mod flowservice;
mod graph;
mod guests;
mod helpers;
mod keys;
mod metadata_paths;
mod nodes;
mod ops;
mod records;
mod refresh_tokens;
mod roles_webapi;
mod security;
mod sharing;
mod solutions;
mod solutions_bad_input;
mod tokens;
mod webapi;
mod webapi_paging;

//! The administration commands, one module per object kind.

pub mod app;
pub mod audit;
pub mod connection;
pub mod demo;
pub mod env;
pub mod flow;
pub mod flowservice;
pub mod keys;
pub mod solution;
pub mod sp;
pub mod tenant;
pub mod token;
pub mod user;

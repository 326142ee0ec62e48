//! Authentication helpers that do not touch the database.

pub mod password;

//! Real test components for cdcflow — never mocks: a throwaway MariaDB server and a Stream Load
//! emulator that follows the Doris and StarRocks documentation.

/// Row-by-row comparison of a MariaDB table with an emulator table.
pub mod compare;
/// Deterministic data for every MySQL type (`gen` is a reserved word in edition 2024).
pub mod datagen;
/// Stream Load emulator (Doris and StarRocks FE/BE/query port).
pub mod emulator;
/// Throwaway MariaDB servers with binlog on, for tests and scripts.
pub mod mariadb;

//! Real test components for cdcflow — never mocks: a throwaway MariaDB server and a Stream Load
//! emulator that follows the Doris and StarRocks documentation.

/// Row-by-row comparison of a MariaDB table with an emulator table.
pub mod compare;
/// Stream Load emulator (Doris and StarRocks FE/BE/query port).
pub mod emulator;
/// Throwaway MariaDB servers with binlog on, for tests and scripts.
pub mod mariadb;

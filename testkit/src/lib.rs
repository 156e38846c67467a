//! Real test components for cdcflow — never mocks: a throwaway MariaDB server and a Stream Load
//! emulator that follows the Doris and StarRocks documentation.

/// Stream Load emulator (Doris and StarRocks FE/BE/query port), see the module docs.
pub mod emulator;
pub mod mariadb;

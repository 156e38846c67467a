//! Real test components for cdcflow — never mocks: a throwaway MariaDB server and a Stream Load
//! emulator that follows the Doris and StarRocks documentation.

pub mod emulator;
pub mod compare;
pub mod mariadb;

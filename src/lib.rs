//! cdcflow

//! rootforge

//! Integration tests: one binary, one module per area.

mod bad_input;
mod boot;
mod images;
mod input;
mod tables;
mod util;
mod vm;

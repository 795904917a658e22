//! Integration tests: one binary, one module per area.

mod bad_input;
mod boot;
mod boot_iso;
mod broken_images;
mod buildroot;
mod compare;
mod erofs;
mod exit_status;
mod ext;
mod hostile;
mod image_input;
mod images;
mod input;
mod iso;
mod iso_tools;
mod output_faults;
mod plan;
mod squashfs;
mod squashfs_tools;
mod tables;
mod tar_input;
mod util;
mod vm;

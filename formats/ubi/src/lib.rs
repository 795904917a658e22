//! UBI images, as mtd-utils' ubinize makes them: every physical erase block
//! (PEB) starts with an erase-counter (EC) header and, if it holds data, a
//! volume-identifier (VID) header; the layout volume's two PEBs hold two
//! copies of the volume table, and the volumes' logical erase blocks (LEBs)
//! follow in the order of the configuration.
//!
//! [`Ubinize`] takes the geometry (ubinize's `-p -m -s -O -e -x -Q`) and
//! the volumes (from ubinize's INI file with [`parse_ini`], or built in
//! code, such as Buildroot's single autoresize `rootfs` volume of
//! [`Volume::buildroot_rootfs`]) and writes the image byte for byte as
//! ubinize does; [`read`] lists an image's volumes and their contents.

mod ini;
mod read;
pub mod records;
mod write;

pub use ini::{IniError, parse_ini};
pub use read::{UbiVolume, is_ubi, read};
pub use write::{Geometry, Ubinize, Volume, VolumeType};

#[cfg(test)]
mod tests;

//! Booting a Debian kernel from our ISO9660 images.

//! ISO9660 images.

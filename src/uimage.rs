//! U-Boot legacy image wrapper.

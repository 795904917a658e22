//! Outer compression (owned by the compress work).

//! Placeholder: the simplified scalar residual block is written here.

//! Multiscale image pyramids.
pub mod laplacian;

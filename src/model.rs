//! Model building blocks.

pub mod ops;

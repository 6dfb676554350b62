//! convscope: train a CNN on an image folder and look inside it from the terminal.

pub mod config;
pub mod data;
pub mod events;
pub mod model;
pub mod viz;

//! convscope: train a CNN on an image folder and look inside it from the terminal.

pub mod allocator;
pub mod analysis;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod events;
pub mod hangup;
pub mod headless;
pub mod logging;
pub mod model;
pub mod run;
pub mod signals;
pub mod train;
mod tui_bridge;
pub mod ui;
pub mod viz;

/// Parse the command line and run it; returns the process exit status.
pub fn main_entry() -> i32 {
    use clap::Parser as _;
    allocator::tune();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::report_parse_error(&e),
    };
    match commands::dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "convscope: error: {e:#}");
            2
        }
    }
}

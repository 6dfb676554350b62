//! convscope: train a CNN on an image folder and look inside it from the terminal.
//!
//! Layers, lowest first; a module imports only from those below it: `yesno`, `allocator`,
//! `logging`, `signals`, `config`, `device`, `events`, `data`, `model`, `viz`, `run`, `train`,
//! `ui`, `session`, `cli`, `commands`.

pub mod allocator;
pub mod analysis;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod device;
pub mod events;
pub mod import;
pub mod infer;
pub mod logging;
pub mod model;
pub mod run;
pub mod session;
pub mod signals;
pub mod train;
pub mod ui;
pub mod viz;
pub mod yesno;

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

//! The one way a command's settings are put together, highest first: flags and their
//! environment variables ([`Overrides`]), a `--config` file, the base (a run's own
//! `config.toml`, or the built-in defaults), and, under every `[ui]` key, the user's
//! preferences file ([`user_ui`]).

use std::path::PathBuf;

use super::{Config, ConfigError, Overrides, user_ui};

/// What the settings start from.
#[derive(Debug, Clone)]
pub enum Base {
    /// Built-in defaults for a new run (`config/default.toml`, or the demo's): a `--config`
    /// file takes their place as a whole.
    Defaults(Config),
    /// An existing run's own settings: a `--config` file adds only its `[ui]` preferences.
    Run(Config),
}

/// A command's settings before they are resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub base: Base,
    /// `--config` (or `CONVSCOPE_CONFIG`).
    pub file: Option<PathBuf>,
    /// Flags and environment variables.
    pub overrides: Overrides,
    /// Whether the user's preferences file applies (not to a command with no screen).
    pub user_preferences: bool,
}

impl Settings {
    /// Settings for a new run from `defaults`, with the user's preferences.
    #[must_use]
    pub fn new_run(defaults: Config, file: Option<PathBuf>, overrides: Overrides) -> Self {
        Self {
            base: Base::Defaults(defaults),
            file,
            overrides,
            user_preferences: true,
        }
    }

    /// Settings of an existing run, with the user's preferences.
    #[must_use]
    pub fn of_run(run: Config, file: Option<PathBuf>, overrides: Overrides) -> Self {
        Self {
            base: Base::Run(run),
            file,
            overrides,
            user_preferences: true,
        }
    }

    /// The same without the user's preferences file.
    #[must_use]
    pub fn without_user_preferences(mut self) -> Self {
        self.user_preferences = false;
        self
    }

    /// Put the layers together and validate the result.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let (mut cfg, ui_file) = match (self.base, self.file) {
            (Base::Defaults(_), Some(path)) => (Config::load(Some(&path))?, None),
            (Base::Defaults(cfg), None) => (cfg, None),
            (Base::Run(cfg), file) => (cfg, file),
        };
        if self.user_preferences {
            cfg.ui = user_ui()?.overlaid(&cfg.ui);
        }
        if let Some(path) = ui_file {
            cfg.ui = cfg.ui.overlaid(&Config::load(Some(&path))?.ui);
        }
        cfg.apply(&self.overrides);
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ColormapName, Graphics};

    #[test]
    fn flags_beat_the_file_which_beats_the_base() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[train]\nepochs = 7\n[ui]\ngraphics = \"halfblocks\"\ncolormap = \"magma\"\n",
        )
        .expect("write");
        let flags = Overrides {
            colormap: Some(ColormapName::Gray),
            ..Overrides::default()
        };
        // A new run takes the file whole.
        let cfg = Settings::new_run(Config::default(), Some(file.clone()), flags.clone())
            .without_user_preferences()
            .resolve()
            .expect("valid");
        assert_eq!(cfg.train.epochs, 7);
        assert_eq!(cfg.ui.graphics, Graphics::Halfblocks);
        assert_eq!(cfg.ui.colormap, ColormapName::Gray);
        // An existing run keeps its training settings and takes the file's [ui].
        let mut run = Config::default();
        run.train.epochs = 3;
        let cfg = Settings::of_run(run, Some(file), flags)
            .without_user_preferences()
            .resolve()
            .expect("valid");
        assert_eq!(cfg.train.epochs, 3);
        assert_eq!(cfg.ui.graphics, Graphics::Halfblocks);
        assert_eq!(cfg.ui.colormap, ColormapName::Gray);
    }

    #[test]
    fn an_invalid_override_is_refused_naming_the_key() {
        let err = Settings::new_run(
            Config::default(),
            None,
            Overrides {
                device: Some("tpu".into()),
                ..Overrides::default()
            },
        )
        .without_user_preferences()
        .resolve()
        .expect_err("refused");
        assert!(err.to_string().contains("train.device"), "{err}");
    }
}

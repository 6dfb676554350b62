//! What observers see of the network: filter and feature-map snapshots of the live weights, or
//! of an earlier epoch's checkpoint when the user steps back in time.

use std::path::PathBuf;

use burn::tensor::Device;

use super::{probe, restore};
use crate::config::Config;
use crate::events::{Event, WarningInfo};
use crate::model::Net;
use crate::run::RunDir;

/// Keeps the probe image and the epoch being looked at.
pub struct Inspector {
    probe: probe::Probe,
    cfg: Config,
    classes: usize,
    run: RunDir,
    /// The image whose feature maps are shown.
    pub image: Option<PathBuf>,
    /// An earlier epoch the user picked, with its network.
    pinned: Option<(usize, Net)>,
}

fn warning(message: String) -> Event {
    Event::Warning(WarningInfo { message })
}

impl Inspector {
    /// Start with `image` as the probe.
    #[must_use]
    pub fn new(cfg: &Config, classes: &[String], run: &RunDir, image: Option<PathBuf>) -> Self {
        Self {
            probe: probe::Probe::new(cfg, classes),
            cfg: cfg.clone(),
            classes: classes.len(),
            run: run.clone(),
            image,
            pinned: None,
        }
    }

    /// The epoch pinned by the user, if any.
    #[must_use]
    pub fn pinned_epoch(&self) -> Option<usize> {
        self.pinned.as_ref().map(|p| p.0)
    }

    /// Filters and feature maps of what is being looked at.
    pub fn snapshots(&self, live: &Net, live_epoch: usize) -> Vec<Event> {
        let (net, epoch) = match &self.pinned {
            Some((e, n)) => (n, *e),
            None => (live, live_epoch),
        };
        let mut out = vec![probe::filters(net, epoch)];
        if let Some(image) = &self.image {
            out.push(self.probe.feature_maps(net, image, epoch));
        }
        out
    }

    /// Snapshots after an epoch: none while an earlier epoch is pinned.
    pub fn on_epoch_end(&self, live: &Net, epoch: usize) -> Vec<Event> {
        if self.pinned.is_some() {
            Vec::new()
        } else {
            self.snapshots(live, epoch)
        }
    }

    /// Look at another image.
    pub fn probe(&mut self, live: &Net, live_epoch: usize, image: PathBuf) -> Vec<Event> {
        let (net, epoch) = match &self.pinned {
            Some((e, n)) => (n, *e),
            None => (live, live_epoch),
        };
        let event = self.probe.feature_maps(net, &image, epoch);
        if !matches!(event, Event::Warning(_)) {
            self.image = Some(image);
        }
        vec![event]
    }

    /// Look at `epoch`'s checkpoint, or follow the live weights again with `None`.
    pub fn select_epoch(
        &mut self,
        live: &Net,
        live_epoch: usize,
        epoch: Option<usize>,
    ) -> Vec<Event> {
        match epoch {
            None => self.pinned = None,
            Some(e) if e >= live_epoch => self.pinned = None,
            Some(e) => {
                let loaded = restore::pick(&self.run, Some(e)).and_then(|(cp, _)| {
                    restore::load_weights(&self.cfg, self.classes, &cp, &Device::flex())
                });
                match loaded {
                    Ok(net) => self.pinned = Some((e, net)),
                    Err(err) => return vec![warning(format!("epoch {e}: {err}"))],
                }
            }
        }
        self.snapshots(live, live_epoch)
    }
}

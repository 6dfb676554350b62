//! What observers see of the network: filter and feature-map snapshots of the live weights, or
//! of an earlier epoch's checkpoint when the user steps back in time.

use std::path::PathBuf;

use burn::tensor::Device;

use super::{probe, restore};
use crate::config::Config;
use crate::events::{Event, WarningInfo};
use crate::model::{Net, ReadError};
use crate::run::RunDir;

/// Keeps the probe image and the epoch being looked at.
pub struct Inspector {
    probe: probe::Probe,
    cfg: Config,
    classes: usize,
    run: RunDir,
    /// The image whose feature maps are shown, with its pixels (read once, off this thread).
    pub image: Option<PathBuf>,
    input: Option<Vec<f32>>,
    loader: probe::Loader,
    /// An earlier epoch the user picked, with its network.
    pinned: Option<(usize, Net)>,
    /// The image the probe is compared with (B), with its pixels once read.
    compare: Option<(PathBuf, Vec<f32>)>,
    /// Reads B off this thread, like `loader` the probe.
    compare_loader: probe::Loader,
}

fn warning(message: String) -> Event {
    Event::Warning(WarningInfo { message })
}

/// A snapshot, or the warning saying why it could not be made: looking inside the network
/// never stops the training.
fn shown(snapshot: Result<Event, ReadError>) -> Event {
    snapshot.unwrap_or_else(|e| {
        tracing::warn!("{e}");
        warning(e.to_string())
    })
}

impl Inspector {
    /// Start with `image` as the probe (its feature maps come from [`Self::poll`] once read).
    #[must_use]
    pub fn new(cfg: &Config, classes: &[String], run: &RunDir, image: Option<PathBuf>) -> Self {
        let mut loader = probe::Loader::new(cfg);
        if let Some(image) = image {
            loader.request(image);
        }
        Self {
            probe: probe::Probe::new(cfg, classes),
            cfg: cfg.clone(),
            classes: classes.len(),
            run: run.clone(),
            image: None,
            input: None,
            loader,
            pinned: None,
            compare: None,
            compare_loader: probe::Loader::new(cfg),
        }
    }

    /// The probe's feature maps with `net`, with B's maps when it is compared with one.
    fn maps(&self, net: &Net, image: &std::path::Path, input: &[f32], epoch: usize) -> Event {
        let mut event = shown(self.probe.feature_maps_of(net, image, input, epoch));
        if let (Event::FeatureMaps(snap), Some((b_image, b_input))) = (&mut event, &self.compare) {
            match self.probe.feature_maps_of(net, b_image, b_input, epoch) {
                Ok(Event::FeatureMaps(b)) => {
                    snap.compare = Some(Box::new(crate::events::CompareMaps {
                        image: b.image,
                        predicted: b.predicted,
                        probability: b.probability,
                        layers: b.layers,
                    }));
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("maps of {}: {e}", b_image.display()),
            }
        }
        event
    }

    /// Compare the probe with `image` (B) from now on (`None`: stop): B is read on a thread
    /// of its own and the probe's maps with B's come from [`Self::poll`]; stopping sends the
    /// probe's maps again without them.
    pub fn compare(&mut self, live: &Net, live_epoch: usize, image: Option<PathBuf>) -> Vec<Event> {
        if let Some(image) = image {
            self.compare_loader.request(image);
            return Vec::new();
        }
        self.compare = None;
        self.maps_again(live, live_epoch)
    }

    /// The network shown and its epoch: the pinned checkpoint's, or else `live`.
    fn shown_net<'a>(&'a self, live: &'a Net, live_epoch: usize) -> (&'a Net, usize) {
        match &self.pinned {
            Some((e, n)) => (n, *e),
            None => (live, live_epoch),
        }
    }

    /// The probe's maps again, made with the pinned checkpoint's network or else `live`.
    fn maps_again(&self, live: &Net, live_epoch: usize) -> Vec<Event> {
        let (net, epoch) = self.shown_net(live, live_epoch);
        match (&self.image, &self.input) {
            (Some(image), Some(input)) => vec![self.maps(net, image, input, epoch)],
            _ => Vec::new(),
        }
    }

    /// Compare with `image` in the maps to come, with no network to make them now.
    pub fn compare_later(&mut self, image: Option<PathBuf>) -> Vec<Event> {
        match image {
            Some(image) => self.compare_loader.request(image),
            None => self.compare = None,
        }
        Vec::new()
    }

    /// The feature maps of a probe image read since the last call, or the warning saying why
    /// it could not be read; waits up to `wait` for the image asked for last.
    pub fn poll(&mut self, live: &Net, live_epoch: usize, wait: std::time::Duration) -> Vec<Event> {
        // Borrowed field by field: the loaders below are taken from while `net` is held.
        let (net, epoch) = match &self.pinned {
            Some((e, n)) => (n, *e),
            None => (live, live_epoch),
        };
        let mut out = Vec::new();
        // B first: a probe read at the same time then comes with B's maps.
        let b_wait = if self.loader.pending() {
            std::time::Duration::ZERO
        } else {
            wait
        };
        let mut b_new = false;
        if let Some((image, read)) = self.compare_loader.take(b_wait) {
            match read {
                Ok(input) => {
                    self.compare = Some((image, input));
                    b_new = true;
                }
                Err(e) => out.push(warning(e.to_string())),
            }
        }
        match self.loader.take(wait) {
            Some((image, Ok(input))) => {
                out.push(self.maps(net, &image, &input, epoch));
                self.image = Some(image);
                self.input = Some(input);
            }
            Some((_, Err(e))) => out.push(warning(e.to_string())),
            None => {
                if b_new && let (Some(image), Some(input)) = (&self.image, &self.input) {
                    out.push(self.maps(net, image, input, epoch));
                }
            }
        }
        out
    }

    /// Filters and feature maps of what is being looked at.
    pub fn snapshots(&self, live: &Net, live_epoch: usize) -> Vec<Event> {
        let (net, epoch) = self.shown_net(live, live_epoch);
        let mut out = vec![shown(probe::filters(net, epoch))];
        if let (Some(image), Some(input)) = (&self.image, &self.input) {
            out.push(self.maps(net, image, input, epoch));
        }
        out
    }

    /// Snapshots after an epoch, marked as sent on their own (a UI may hold them back, see
    /// `ui::pacing`): none while an earlier epoch is pinned.
    pub fn on_epoch_end(&self, live: &Net, epoch: usize) -> Vec<Event> {
        if self.pinned.is_some() {
            return Vec::new();
        }
        let mut out = self.snapshots(live, epoch);
        for ev in &mut out {
            match ev {
                Event::Filters(f) => f.at_epoch_end = true,
                Event::FeatureMaps(f) => f.at_epoch_end = true,
                _ => {}
            }
        }
        out
    }

    /// Grad-CAM with every feature-map snapshot from now on (`None`: none), and the probe's
    /// snapshot again with it.
    pub fn explain(
        &mut self,
        live: &Net,
        live_epoch: usize,
        cam: Option<crate::events::CamRequest>,
    ) -> Vec<Event> {
        self.probe.set_cam(cam);
        self.maps_again(live, live_epoch)
    }

    /// Grad-CAM with the feature-map snapshots to come, with no network to make one now.
    pub fn explain_later(&mut self, cam: Option<crate::events::CamRequest>) -> Vec<Event> {
        self.probe.set_cam(cam);
        Vec::new()
    }

    /// Look at another image: it is read on a thread of its own, and its feature maps come
    /// from [`Self::poll`] (a FIFO, a huge or slow file never holds up the training).
    pub fn probe(&mut self, image: PathBuf) {
        self.loader.request(image);
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
                let loaded = restore::pick_and_load(
                    &self.run,
                    Some(e),
                    &self.cfg,
                    self.classes,
                    &Device::flex(),
                );
                match loaded {
                    Ok((_, _, net)) => self.pinned = Some((e, net)),
                    Err(err) => return vec![warning(format!("epoch {e}: {err}"))],
                }
            }
        }
        self.snapshots(live, live_epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_epoch_end_snapshots_are_marked_as_sent_on_their_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (run, _lock, _) = RunDir::create(&dir.path().join("r")).expect("create");
        let image = dir.path().join("probe.png");
        image::RgbImage::from_pixel(20, 20, image::Rgb([200, 40, 40]))
            .save(&image)
            .expect("png");
        let mut cfg = Config::default();
        cfg.data.image_size = [32, 32];
        let classes = ["a".to_string(), "b".to_string()];
        let net = Net::new(&cfg, 2, 1, &Device::flex()).expect("net");
        let mut inspector = Inspector::new(&cfg, &classes, &run, Some(image.clone()));
        let marks = |events: &[Event]| -> Vec<(&'static str, bool)> {
            events
                .iter()
                .map(|e| match e {
                    Event::Filters(f) => ("filters", f.at_epoch_end),
                    Event::FeatureMaps(f) => ("maps", f.at_epoch_end),
                    _ => ("other", false),
                })
                .collect()
        };
        // The first image is read off this thread; its maps come with the first poll.
        assert_eq!(
            marks(&inspector.poll(&net, 1, std::time::Duration::from_mins(1))),
            [("maps", false)]
        );
        assert_eq!(
            marks(&inspector.on_epoch_end(&net, 1)),
            [("filters", true), ("maps", true)]
        );
        assert_eq!(
            marks(&inspector.snapshots(&net, 1)),
            [("filters", false), ("maps", false)]
        );
        inspector.probe(image);
        assert_eq!(
            marks(&inspector.poll(&net, 1, std::time::Duration::from_mins(1))),
            [("maps", false)]
        );
        assert_eq!(
            marks(&inspector.select_epoch(&net, 1, None)),
            [("filters", false), ("maps", false)]
        );
    }

    #[test]
    fn explain_adds_grad_cam_to_the_probe_s_maps_until_told_to_stop() {
        use crate::events::CamRequest;
        use crate::model::explain;
        let dir = tempfile::tempdir().expect("tempdir");
        let (run, _lock, _) = RunDir::create(&dir.path().join("r")).expect("create");
        let image = dir.path().join("probe.png");
        image::RgbImage::from_fn(32, 32, |x, y| {
            image::Rgb([(x * 8) as u8, (y * 8) as u8, 90])
        })
        .save(&image)
        .expect("png");
        let mut cfg = Config::default();
        cfg.data.image_size = [32, 32];
        let classes = ["a".to_string(), "b".to_string(), "c".to_string()];
        let net = Net::new(&cfg, 3, 1, &Device::flex()).expect("net");
        let mut inspector = Inspector::new(&cfg, &classes, &run, Some(image));
        let maps = |events: &[Event]| -> Vec<crate::events::FeatureSnapshot> {
            events
                .iter()
                .filter_map(|e| match e {
                    Event::FeatureMaps(f) => Some((**f).clone()),
                    _ => None,
                })
                .collect()
        };
        let first = maps(&inspector.poll(&net, 1, std::time::Duration::from_mins(1)));
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].cam, None, "no Grad-CAM until asked for");
        let predicted = first[0].predicted;

        let ask = |inspector: &mut Inspector, layer, class| {
            let got = maps(&inspector.explain(&net, 1, Some(CamRequest { layer, class })));
            assert_eq!(got.len(), 1, "the probe's maps again, with the map");
            got[0].cam.clone().expect("a Grad-CAM")
        };
        // The default: the last conv before its pool, the predicted class; the map at the
        // layer's resolution, or none at all (no positive evidence).
        let cam = ask(&mut inspector, 0, 0);
        let default = explain::default_layer(&net).expect("a conv");
        let rows = crate::model::summary::summarize(&cfg, 3).expect("summary");
        assert_eq!(cam.layer, rows[default].name);
        let layer = first[0]
            .layers
            .iter()
            .find(|l| l.name == cam.layer)
            .expect("the layer's maps");
        assert_eq!(cam.class, predicted);
        assert_eq!((cam.width, cam.height), (layer.width, layer.height));
        assert!(cam.values.is_empty() || cam.values.len() == layer.width * layer.height);
        assert!(cam.values.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!((cam.probability - first[0].probabilities[predicted]).abs() < 1e-5);
        // The same as the engine's own.
        let input = read(&inspector, &cfg);
        let engine = explain::grad_cam(&net, input, explain::CamLayer::Step(default), predicted)
            .expect("grad-cam");
        assert_eq!(
            cam.values,
            engine.map().map(|h| h.values.clone()).unwrap_or_default()
        );
        // Counterfactuals: the next classes after the predicted one, wrapping.
        assert_eq!(ask(&mut inspector, 0, 1).class, (predicted + 1) % 3);
        assert_eq!(ask(&mut inspector, 0, 2).class, (predicted + 2) % 3);
        assert_eq!(ask(&mut inspector, 0, 3).class, predicted);
        // Layers: every conv once and "all conv layers", then the default again.
        let convs = explain::conv_layers(&net).len();
        let names: Vec<String> = (0..=convs)
            .map(|step| ask(&mut inspector, step, 0).layer)
            .collect();
        assert!(names.contains(&"all conv layers".to_string()), "{names:?}");
        let distinct: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), convs + 1, "{names:?}");
        assert_eq!(ask(&mut inspector, convs + 1, 0).layer, names[0]);
        // Kept for the epoch's snapshots; gone once told to stop.
        assert!(maps(&inspector.on_epoch_end(&net, 2))[0].cam.is_some());
        assert!(maps(&inspector.explain(&net, 2, None))[0].cam.is_none());
        assert!(maps(&inspector.on_epoch_end(&net, 2))[0].cam.is_none());
    }

    #[test]
    fn compare_adds_b_s_maps_to_the_probe_s_until_told_to_stop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (run, _lock, _) = RunDir::create(&dir.path().join("r")).expect("create");
        let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
        image::RgbImage::from_fn(32, 32, |x, y| {
            image::Rgb([(x * 8) as u8, (y * 8) as u8, 90])
        })
        .save(&a)
        .expect("png");
        image::RgbImage::from_fn(32, 32, |x, _| image::Rgb([20, (x * 8) as u8, 200]))
            .save(&b)
            .expect("png");
        let mut cfg = Config::default();
        cfg.data.image_size = [32, 32];
        let classes = ["a".to_string(), "b".to_string()];
        let net = Net::new(&cfg, 2, 1, &Device::flex()).expect("net");
        let mut inspector = Inspector::new(&cfg, &classes, &run, Some(a.clone()));
        let wait = std::time::Duration::from_mins(1);
        let maps = |events: Vec<Event>| -> Vec<crate::events::FeatureSnapshot> {
            events
                .into_iter()
                .filter_map(|e| match e {
                    Event::FeatureMaps(f) => Some(*f),
                    _ => None,
                })
                .collect()
        };
        let first = maps(inspector.poll(&net, 1, wait));
        assert_eq!(first.len(), 1);
        assert!(first[0].compare.is_none(), "no B until asked for");
        // B is read off this thread: nothing at once, the probe's maps with B's at the poll.
        assert!(inspector.compare(&net, 1, Some(b.clone())).is_empty());
        let with = maps(inspector.poll(&net, 1, wait));
        assert_eq!(with.len(), 1);
        assert_eq!(with[0].image, a);
        assert_eq!(with[0].layers, first[0].layers);
        let got = with[0].compare.as_ref().expect("B's maps");
        let Ok(Event::FeatureMaps(alone)) = inspector.probe.feature_maps(&net, &b, 1) else {
            panic!("B's maps alone")
        };
        assert_eq!(got.image, b);
        assert_eq!(got.layers, alone.layers);
        assert_eq!(got.predicted, alone.predicted);
        // Kept with the epoch's snapshots; gone once told to stop.
        assert!(maps(inspector.on_epoch_end(&net, 2))[0].compare.is_some());
        let stopped = maps(inspector.compare(&net, 2, None));
        assert_eq!(stopped.len(), 1);
        assert!(stopped[0].compare.is_none());
        assert!(maps(inspector.on_epoch_end(&net, 2))[0].compare.is_none());
    }

    /// The probe's pixels as the network takes them.
    fn read(inspector: &Inspector, cfg: &Config) -> burn::tensor::Tensor<4> {
        let [c, h, w] = cfg.input_shape();
        burn::tensor::Tensor::<4>::from_data(
            burn::tensor::TensorData::new(inspector.input.clone().expect("read"), [1, c, h, w]),
            &Device::flex(),
        )
    }
}

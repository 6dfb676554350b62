//! Pictures that change on their own are drawn only as often as the link can take them.
//!
//! A training sends the filters and the probe's feature maps at every epoch end. On a GPU an
//! epoch of a small dataset takes a fraction of a second, and each refresh of the Feature maps
//! tab at 200x60 writes about 0.13 MB in half blocks and 1 MB in sixel: measured on a run with
//! 0.05 s epochs, 0.69 MB/s and 3.2 MB/s. Over SSH that queues seconds of output in front of
//! every key. So an epoch-end picture is applied only once the bytes already written have
//! drained at `ui.refresh_kb_per_sec`; until then only the newest of each kind is kept. What a
//! key asks for (a probe, an epoch, a filter refresh) is applied at once, and so is everything
//! while no picture tab is on screen (nothing is written for it) or the run has ended.

use std::time::{Duration, Instant};

use crate::events::Event;

/// Holds epoch-end pictures back to a byte rate.
#[derive(Debug)]
pub struct Pacer {
    /// Bytes a second; 0: no pacing.
    rate: f64,
    /// When the bytes written so far have drained at `rate`.
    free_at: Instant,
    filters: Option<Event>,
    maps: Option<Event>,
}

/// Which picture an event carries, and whether it came on its own at an epoch end.
fn picture(ev: &Event) -> Option<(bool, bool)> {
    match ev {
        Event::Filters(f) => Some((true, f.at_epoch_end)),
        Event::FeatureMaps(f) => Some((false, f.at_epoch_end)),
        _ => None,
    }
}

impl Pacer {
    #[must_use]
    pub fn new(kb_per_sec: u32, now: Instant) -> Self {
        Self {
            rate: f64::from(kb_per_sec) * 1000.0,
            free_at: now,
            filters: None,
            maps: None,
        }
    }

    /// The screen wrote `bytes` at `now`.
    pub fn wrote(&mut self, bytes: u64, now: Instant) {
        if self.rate > 0.0 && bytes > 0 {
            // u64 -> f64 is exact below 2^53 bytes.
            #[allow(clippy::cast_precision_loss)]
            let drain = Duration::from_secs_f64(bytes as f64 / self.rate);
            self.free_at = self.free_at.max(now) + drain;
        }
    }

    /// `ev` if it is to be applied now; an epoch-end picture that must wait is kept (replacing
    /// an older one of its kind) and `None` returned. `at_once`: nothing is waited for (no
    /// picture on screen, or the run has ended).
    pub fn admit(&mut self, ev: Event, now: Instant, at_once: bool) -> Option<Event> {
        let Some((filters, epoch_end)) = picture(&ev) else {
            return Some(ev);
        };
        let slot = if filters {
            &mut self.filters
        } else {
            &mut self.maps
        };
        if !epoch_end || at_once || self.rate <= 0.0 || now >= self.free_at {
            // The newest picture of its kind: one still held is older (or for another image).
            *slot = None;
            return Some(ev);
        }
        *slot = Some(ev);
        None
    }

    /// The pictures held back, once their time has come (or at once with `at_once`).
    pub fn due(&mut self, now: Instant, at_once: bool) -> Vec<Event> {
        if !at_once && now < self.free_at {
            return Vec::new();
        }
        self.filters
            .take()
            .into_iter()
            .chain(self.maps.take())
            .collect()
    }

    /// Whether a picture is held back.
    #[must_use]
    pub fn holds(&self) -> bool {
        self.filters.is_some() || self.maps.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{FeatureSnapshot, FilterSnapshot, WarningInfo};

    fn maps(epoch: usize, at_epoch_end: bool) -> Event {
        Event::FeatureMaps(Box::new(FeatureSnapshot {
            epoch,
            at_epoch_end,
            ..FeatureSnapshot::default()
        }))
    }

    fn filters(epoch: usize) -> Event {
        Event::Filters(Box::new(FilterSnapshot {
            epoch,
            at_epoch_end: true,
            ..FilterSnapshot::default()
        }))
    }

    fn epoch(ev: &Event) -> usize {
        match ev {
            Event::Filters(f) => f.epoch,
            Event::FeatureMaps(f) => f.epoch,
            _ => usize::MAX,
        }
    }

    #[test]
    fn epoch_end_pictures_wait_until_the_written_bytes_have_drained() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100, t0); // 100 KB/s
        assert!(
            p.admit(maps(1, true), t0, false).is_some(),
            "nothing written yet"
        );
        p.wrote(200_000, t0); // two seconds' worth
        let t1 = t0 + Duration::from_millis(500);
        assert!(p.admit(filters(2), t1, false).is_none());
        assert!(p.admit(maps(2, true), t1, false).is_none());
        assert!(p.admit(maps(3, true), t1, false).is_none());
        assert!(p.holds());
        assert!(p.due(t0 + Duration::from_millis(1900), false).is_empty());
        let due = p.due(t0 + Duration::from_millis(2001), false);
        assert_eq!(
            due.iter().map(epoch).collect::<Vec<_>>(),
            [2, 3],
            "newest of each kind"
        );
        assert!(!p.holds());
        // Writes while already behind add up from the time the earlier ones drain.
        p.wrote(100_000, t0 + Duration::from_millis(2001));
        p.wrote(100_000, t0 + Duration::from_millis(2002));
        assert!(
            p.admit(maps(4, true), t0 + Duration::from_millis(3900), false)
                .is_none()
        );
        assert!(!p.due(t0 + Duration::from_millis(4002), false).is_empty());
    }

    #[test]
    fn what_a_key_asked_for_goes_through_and_replaces_the_held_picture() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100, t0);
        p.wrote(1_000_000, t0);
        assert!(p.admit(maps(5, true), t0, false).is_none());
        // The user probes another image: its maps come at once, and the held maps (of the
        // previous image) must not be drawn over them later.
        assert_eq!(
            p.admit(maps(5, false), t0, false).map(|e| epoch(&e)),
            Some(5)
        );
        assert!(!p.holds());
        assert!(p.due(t0 + Duration::from_mins(1), false).is_empty());
        // Other events are never held.
        let w = Event::Warning(WarningInfo {
            message: "x".into(),
        });
        assert!(p.admit(w, t0, false).is_some());
    }

    #[test]
    fn nothing_waits_off_the_picture_tabs_after_the_run_or_with_pacing_off() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100, t0);
        p.wrote(1_000_000, t0);
        assert!(p.admit(maps(1, true), t0, true).is_some());
        assert!(p.admit(maps(2, true), t0, false).is_none());
        assert_eq!(
            p.due(t0, true).len(),
            1,
            "the run ended: the held picture is drawn"
        );
        let mut off = Pacer::new(0, t0);
        off.wrote(1_000_000, t0);
        assert!(off.admit(maps(1, true), t0, false).is_some());
    }
}

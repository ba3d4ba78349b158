//! Admission's estimate, as pure arithmetic on the work the server holds,
//! so it is tested with made-up loads instead of timed decodes.
//!
//! Every admitted request's work left is costed in seconds of the whole
//! server: its waiting decode pixels × the decode time per megapixel ÷ the
//! decode workers, **plus** its crops × the model time per item. A sum, not
//! a max: on a CPU server decoding and forward passes run on the same cores,
//! so one request's decode does slow another's batches (on a GPU the model
//! part is a few milliseconds per item and the sum costs nothing).
//!
//! Both stages serve requests round-robin (the decode ring, the batch
//! queue's fair order), so the server behaves like processor sharing: a
//! request with work `w` left is done once every other request has had
//! `min(its work, w)` and it has had `w`. That gives two checks at
//! admission:
//! - the newcomer's own finish, against its deadline (with headroom for
//!   those that arrive after it, see [`ADMIT_HEADROOM`]);
//! - every admitted request's finish, which the newcomer delays by
//!   `min(its work, theirs)`: one that would still have made its deadline
//!   must not miss it because of the newcomer. Without this, four heavy
//!   requests accepted one after another each looked feasible alone, and
//!   round-robin then made all four finish together, late (four 504s).
//!
//! The requests present are a snapshot. Smaller ones are usually a stream
//! (`concurrency.rs`): each ends soon and another takes its place, so over
//! a newcomer's life they take a share of `own` per stream, not their own
//! small work once. The newcomer's estimate counts the larger of the two:
//! the small requests present, or one share of `own` per stream, the
//! streams being the time-averaged requests in flight beyond the larger
//! requests present (counted on their own, in full), and at most the
//! smaller ones present (a stream with nothing in flight has stopped, or
//! pauses: the average alone would still count a client that just left).

use std::time::{Duration, Instant};

/// The share of its deadline a newcomer's estimate may take. The rest is
/// room for the requests that arrive after it: each delays it by its own
/// share, and without room the stream of small requests that follows a
/// heavy one would be refused to keep the heavy one on time.
pub(super) const ADMIT_HEADROOM: f64 = 0.8;

/// An admitted request's work left and its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Load {
    pub(super) work: Duration,
    pub(super) deadline: Option<Instant>,
}

/// Why a newcomer is refused, with the figures for its 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refusal {
    /// When the newcomer would be done.
    pub(super) estimate: Duration,
    /// When to try again: when the newcomer or the request it would make
    /// late would be done.
    pub(super) retry_after: Duration,
}

/// The works of all loads, sorted, with prefix sums: `Σ min(wⱼ, x)` for
/// any `x` in a binary search, so admission is O(n log n), not O(n²).
struct Shares {
    sorted: Vec<Duration>,
    prefix: Vec<Duration>,
}

impl Shares {
    fn new(loads: &[Load]) -> Self {
        let mut sorted: Vec<Duration> = loads.iter().map(|load| load.work).collect();
        sorted.sort_unstable();
        let mut prefix = Vec::with_capacity(sorted.len() + 1);
        prefix.push(Duration::ZERO);
        for work in &sorted {
            let last = *prefix.last().unwrap_or(&Duration::ZERO);
            prefix.push(last.saturating_add(*work));
        }
        Self { sorted, prefix }
    }

    /// `Σ min(wⱼ, x)` over every load.
    fn up_to(&self, x: Duration) -> Duration {
        let below = self.sorted.partition_point(|work| *work < x);
        let rest = u32::try_from(self.sorted.len() - below).unwrap_or(u32::MAX);
        self.prefix[below].saturating_add(x.saturating_mul(rest))
    }
}

/// What admission knows of the server besides the requests present.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Background {
    /// Work already started (decodes running), which everyone waits for.
    pub(super) running: Duration,
    /// Requests in flight on average lately (`concurrency.rs`).
    pub(super) streams: f64,
    /// The share of the CPU the forward passes leave, 0 to 1 (1 = all: a
    /// GPU model, or nothing measured).
    pub(super) spare: f64,
    /// The newcomer's decode work, which runs on the niced threads
    /// (`low_priority.rs`): in what the passes of the smaller requests
    /// leave, not in a fair share.
    pub(super) niced_decode: Duration,
}

/// The least `spare` counted: a niced decode at most 20 times as long.
const MIN_SPARE: f64 = 0.05;

/// When a newcomer with `own` work would be done: the running work, a
/// share of `own` for each larger request present, the smaller requests
/// (their work, or a share of `own` for each that the average shows to be
/// a stream, whichever is more), and its own work; while smaller requests
/// are live, its niced decode also slows to the spare share of the CPU.
fn finish_estimate(shares: &Shares, background: Background, own: Duration) -> Duration {
    let larger = shares.sorted.len() - shares.sorted.partition_point(|work| *work < own);
    let larger_shares = own.saturating_mul(u32::try_from(larger).unwrap_or(u32::MAX));
    let smaller_present = shares.up_to(own).saturating_sub(larger_shares);
    // A stream is live only while one of its requests is present: the
    // average still remembers a client that just stopped.
    let smaller_count = shares.sorted.len() - larger;
    let streams = (background.streams - larger as f64).clamp(0.0, smaller_count as f64);
    let smaller = smaller_present.max(own.mul_f64(streams));
    let base = background
        .running
        .saturating_add(larger_shares)
        .saturating_add(own);
    let shared = base.saturating_add(smaller);
    if smaller_count == 0 || background.spare >= 1.0 {
        return shared;
    }
    // Smaller requests live: their passes come before the niced decodes,
    // which take 1 / spare as long.
    let slowdown = 1.0 / background.spare.max(MIN_SPARE) - 1.0;
    shared.saturating_add(background.niced_decode.mul_f64(slowdown))
}

/// Admits a newcomer with `own` work left (its decode never less than its
/// largest image: one image does not split across workers) unless it would
/// finish past `limit` (its timeout with headroom), or would make an
/// admitted request that was on time late.
pub(super) fn judge(
    loads: &[Load],
    background: Background,
    own: Duration,
    limit: Duration,
    now: Instant,
) -> Result<(), Refusal> {
    let shares = Shares::new(loads);
    let running = background.running;
    let estimate = finish_estimate(&shares, background, own);
    if estimate > limit {
        return Err(Refusal {
            estimate,
            retry_after: estimate,
        });
    }
    for load in loads {
        let Some(deadline) = load.deadline else {
            continue;
        };
        let slack = deadline.saturating_duration_since(now);
        // Its own work is in `shares` (min(w, w) = w).
        let before = running.saturating_add(shares.up_to(load.work));
        let after = before.saturating_add(own.min(load.work));
        if before <= slack && after > slack {
            return Err(Refusal {
                estimate,
                retry_after: before.max(estimate),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// No streams beyond the requests present.
    fn quiet(running: Duration) -> Background {
        Background {
            running,
            streams: 0.0,
            spare: 1.0,
            niced_decode: Duration::ZERO,
        }
    }

    fn load(seconds: u64, deadline_in: Option<u64>, now: Instant) -> Load {
        Load {
            work: SECOND * seconds as u32,
            deadline: deadline_in.map(|s| now + SECOND * s as u32),
        }
    }

    #[test]
    fn an_idle_server_admits_what_fits_its_limit() {
        let now = Instant::now();
        assert_eq!(
            judge(&[], quiet(Duration::ZERO), SECOND * 8, SECOND * 8, now),
            Ok(())
        );
        let refused = judge(&[], quiet(Duration::ZERO), SECOND * 9, SECOND * 8, now).unwrap_err();
        assert_eq!(refused.estimate, SECOND * 9);
    }

    #[test]
    fn the_newcomer_waits_for_a_fair_share_of_each_other_request() {
        let now = Instant::now();
        // Shares: min(2, 3) + min(10, 3) = 5, plus running 1 and own 3.
        let loads = [load(2, None, now), load(10, None, now)];
        let refused = judge(&loads, quiet(SECOND), SECOND * 3, SECOND * 8, now).unwrap_err();
        assert_eq!(refused.estimate, SECOND * 9);
        assert_eq!(
            judge(&loads, quiet(SECOND), SECOND * 3, SECOND * 9, now),
            Ok(())
        );
    }

    #[test]
    fn a_newcomer_that_would_make_an_admitted_request_late_is_refused() {
        let now = Instant::now();
        // Admitted: 20 s of work, 22 s to go; a second heavy one of 20 s
        // would fit its own 60 s, but push the first to 40 s.
        let first = load(20, Some(22), now);
        let refused = judge(
            &[first],
            quiet(Duration::ZERO),
            SECOND * 20,
            SECOND * 60,
            now,
        )
        .unwrap_err();
        assert_eq!(refused.estimate, SECOND * 40);
        assert_eq!(refused.retry_after, SECOND * 40);
        // A small one delays it by its own second only: admitted.
        assert_eq!(
            judge(&[first], quiet(Duration::ZERO), SECOND, SECOND * 60, now),
            Ok(())
        );
    }

    #[test]
    fn a_request_already_late_does_not_block_admission() {
        let now = Instant::now();
        // Due in 5 s with 20 s left: late whatever happens; refusing others
        // for it would save nothing.
        let doomed = load(20, Some(5), now);
        assert_eq!(
            judge(&[doomed], quiet(Duration::ZERO), SECOND, SECOND * 60, now),
            Ok(())
        );
        // No deadline: nothing to protect.
        let patient = load(20, None, now);
        assert_eq!(
            judge(
                &[patient],
                quiet(Duration::ZERO),
                SECOND * 20,
                SECOND * 60,
                now
            ),
            Ok(())
        );
    }

    #[test]
    fn shares_match_the_quadratic_sum() {
        let now = Instant::now();
        let loads: Vec<Load> = [5, 1, 9, 3, 3, 7]
            .iter()
            .map(|&s| load(s, None, now))
            .collect();
        let shares = Shares::new(&loads);
        for x in 0..12u32 {
            let x = SECOND * x;
            let expected: Duration = loads.iter().map(|load| load.work.min(x)).sum();
            assert_eq!(shares.up_to(x), expected);
        }
    }

    #[test]
    fn streams_of_small_requests_take_a_share_of_the_whole_newcomer() {
        let now = Instant::now();
        // Two one-second requests present; alone they would cost 2 s.
        let loads = [load(1, None, now), load(1, None, now)];
        let snapshot = judge(&loads, quiet(Duration::ZERO), SECOND * 10, SECOND, now);
        assert_eq!(snapshot.unwrap_err().estimate, SECOND * 12);
        // But two have been in flight all along: they are streams, each
        // taking a share of the whole 10 s.
        let streams = Background {
            running: Duration::ZERO,
            streams: 2.0,
            spare: 1.0,
            niced_decode: Duration::ZERO,
        };
        let refused = judge(&loads, streams, SECOND * 10, SECOND * 29, now).unwrap_err();
        assert_eq!(refused.estimate, SECOND * 30);
        assert_eq!(
            judge(&loads, streams, SECOND * 10, SECOND * 30, now),
            Ok(())
        );
    }

    #[test]
    fn larger_requests_present_are_not_counted_again_as_streams() {
        let now = Instant::now();
        // A 20 s request and a 1 s one present, an average of 1 in flight:
        // that one is the larger request, charged the newcomer's 10 s once;
        // the small one counts its own second.
        let loads = [load(20, None, now), load(1, None, now)];
        let background = Background {
            running: Duration::ZERO,
            streams: 1.0,
            spare: 1.0,
            niced_decode: Duration::ZERO,
        };
        let refused = judge(&loads, background, SECOND * 10, SECOND, now).unwrap_err();
        assert_eq!(refused.estimate, SECOND * 21);
        // An average of 1.5: the small one is half a stream, 5 s.
        let background = Background {
            streams: 1.5,
            ..background
        };
        let refused = judge(&loads, background, SECOND * 10, SECOND, now).unwrap_err();
        assert_eq!(refused.estimate, SECOND * 25);
    }

    #[test]
    fn a_stream_with_nothing_in_flight_no_longer_counts() {
        let now = Instant::now();
        // The average still remembers two clients, but nothing is present.
        let background = Background {
            running: Duration::ZERO,
            streams: 2.0,
            spare: 1.0,
            niced_decode: Duration::ZERO,
        };
        assert_eq!(
            judge(&[], background, SECOND * 10, SECOND * 10, now),
            Ok(())
        );
        // One small request present: one stream.
        let loads = [load(1, None, now)];
        let refused = judge(&loads, background, SECOND * 10, SECOND, now).unwrap_err();
        assert_eq!(refused.estimate, SECOND * 20);
    }

    #[test]
    fn a_busy_cpu_slows_only_the_niced_decode_and_only_beside_smaller_requests() {
        let now = Instant::now();
        // One small request live, the passes 90 % busy: the newcomer's 8 s
        // of niced decoding takes 80 s, 72 s more than its fair-share
        // estimate of 20 s (its 10 s, and 10 s for the stream).
        let loads = [load(1, None, now)];
        let busy = Background {
            running: Duration::ZERO,
            streams: 1.0,
            spare: 0.1,
            niced_decode: SECOND * 8,
        };
        let refused = judge(&loads, busy, SECOND * 10, SECOND * 60, now).unwrap_err();
        assert_eq!(refused.estimate, SECOND * 92);
        // Nothing smaller live (the busy share was its own kind of work, or
        // is over): no slowdown.
        assert_eq!(judge(&[], busy, SECOND * 10, SECOND * 10, now), Ok(()));
        // Model work is not slowed (a request of photos: no decode to speak of).
        let photos = Background {
            niced_decode: Duration::ZERO,
            ..busy
        };
        let refused = judge(&loads, photos, SECOND * 10, SECOND, now).unwrap_err();
        assert_eq!(refused.estimate, SECOND * 20);
        // The spare share never counts below 5 %: 8 s x 19 more.
        let saturated = Background { spare: 0.0, ..busy };
        let refused = judge(&loads, saturated, SECOND * 10, SECOND, now).unwrap_err();
        assert_eq!(refused.estimate, SECOND * 172);
    }
}

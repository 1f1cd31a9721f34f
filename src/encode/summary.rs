//! Graphite's histogram summaries: count, sum, min, max and nearest-rank percentiles over one
//! carbon slot's samples, merged across flushes into the same slot ([`SlotCarry`]).
//!
//! Pure arithmetic over caller-owned samples: no I/O and no line writing (`graphite` writes
//! the lines from the [`Summary`]).

use super::EncodeTally;

/// What one series already sent for the current carbon slot. Carbon keeps the last point
/// written to a slot, so a second flush into the same slot (an explicit `flush()`, the final
/// flush at shutdown, a late tick) must send the slot's *cumulative* counter delta and
/// histogram summary, or it would overwrite the first with a partial value. For percentiles
/// that means keeping the slot's samples: a histogram keeps its last flush's finite samples
/// (at most its per-interval cap) until its next flush, and after a merge of several flushes
/// into one slot at most twice the larger of the cap and 1024 (see `merge_samples`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SlotCarry {
    pub(super) slot: u64,
    pub(super) count: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// Histograms only (boxed, so every other series pays one pointer): the slot's samples.
    pub(super) samples: Option<Box<SlotSamples>>,
}

impl SlotCarry {
    /// The slot's kept samples, sorted (empty for a series that keeps none).
    pub(super) fn slot_samples(&self) -> &[f64] {
        self.samples.as_deref().map_or(&[][..], |k| &k.values[..])
    }
}

/// A histogram's finite kept samples for its current slot, sorted; each stands for `weight`
/// recorded samples (more than 1 when the reservoir sampled, or after thinning).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct SlotSamples {
    pub(super) values: Vec<f64>,
    weight: f64,
}

/// One slot's summary so far: what the `.count .sum .min .max` lines carry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Summary {
    pub(super) count: u64,
    pub(super) sum: f64,
    pub(super) min: f64,
    pub(super) max: f64,
}

/// Summarises one interval's samples (sorted in place) for the slot `ts` and merges them with
/// what `carry` holds for that slot, keeping the slot's samples when `keep_samples` (there are
/// percentiles to compute). `recorded` is how many samples were recorded; more than `samples`
/// holds when the reservoir sampled. Non-finite samples are counted in `t` as invalid;
/// `None` when no finite sample is left (the carry is then untouched).
pub(super) fn summarize(
    samples: &mut [f64],
    recorded: u64,
    ts: u64,
    keep_samples: bool,
    carry: &mut SlotCarry,
    t: &mut EncodeTally,
) -> Option<Summary> {
    samples.sort_unstable_by(f64::total_cmp);
    // NaN sorts to the ends (by sign) and infinities next to them: keep the finite middle.
    let first = samples
        .iter()
        .position(|v| v.is_finite())
        .unwrap_or(samples.len());
    let last = samples
        .iter()
        .rposition(|v| v.is_finite())
        .map_or(first, |i| i + 1);
    let finite = &samples[first..last];
    let kept = samples.len() as u64;
    t.invalid_values += kept - finite.len() as u64;
    let (Some(&min), Some(&max)) = (finite.first(), finite.last()) else {
        return None;
    };
    let exact_sum: f64 = finite.iter().sum();
    #[allow(
        clippy::cast_precision_loss,
        reason = "summary statistics need no more than f64 precision"
    )]
    let (count, sum) = if recorded > kept {
        // Sampled: the count is exact, the sum is the sample mean times it.
        let count = (finite.len() as f64 * recorded as f64 / kept as f64).round();
        (count, exact_sum / finite.len() as f64 * count)
    } else {
        (finite.len() as f64, exact_sum)
    };
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a rounded, non-negative count"
    )]
    let mut count = count as u64;
    let (mut sum, mut min, mut max) = (sum, min, max);
    #[allow(clippy::cast_precision_loss, reason = "a sampling ratio")]
    let weight = if recorded > kept {
        recorded as f64 / kept as f64
    } else {
        1.0
    };
    let same_slot = carry.slot == ts && carry.count > 0;
    if same_slot {
        count += carry.count;
        sum += carry.sum;
        min = min.min(carry.min);
        max = max.max(carry.max);
    }
    // Samples are kept only when there are percentiles to compute from them.
    if keep_samples {
        let kept_samples = carry.samples.get_or_insert_default();
        if same_slot {
            merge_samples(
                &mut kept_samples.values,
                &mut kept_samples.weight,
                finite,
                weight,
            );
        } else {
            kept_samples.values.clear();
            kept_samples.values.extend_from_slice(finite);
            kept_samples.weight = weight;
        }
    }
    carry.slot = ts;
    carry.count = count;
    carry.sum = sum;
    carry.min = min;
    carry.max = max;
    Some(Summary {
        count,
        sum,
        min,
        max,
    })
}

/// Merges the sorted `new` samples, each standing for `new_weight` recorded samples, into the
/// slot's sorted `slot` samples of weight `slot_weight`, so that every kept sample stands for
/// the same number: the lighter side is thinned systematically (every k-th in sorted order),
/// which moves no quantile by more than one kept sample's rank. Both are thinned further if
/// the merge would exceed twice the larger of `new`'s length and 1024, which bounds the
/// memory of repeated flushes into one slot.
fn merge_samples(slot: &mut Vec<f64>, slot_weight: &mut f64, new: &[f64], new_weight: f64) {
    #[allow(clippy::cast_precision_loss, reason = "sample counts")]
    let (n_slot, n_new) = (slot.len() as f64, new.len() as f64);
    let mut weight = slot_weight.max(new_weight);
    #[allow(clippy::cast_precision_loss, reason = "a sample count")]
    let bound = (2 * new.len().max(1024)) as f64;
    let merged = n_slot * *slot_weight / weight + n_new * new_weight / weight;
    if merged > bound {
        weight *= merged / bound;
    }
    let keep_slot = thinned_len(slot.len(), *slot_weight / weight);
    for j in 0..keep_slot {
        slot[j] = slot[pick(j, slot.len(), keep_slot)];
    }
    slot.truncate(keep_slot);
    let keep_new = thinned_len(new.len(), new_weight / weight);
    slot.extend((0..keep_new).map(|j| new[pick(j, new.len(), keep_new)]));
    slot.sort_unstable_by(f64::total_cmp);
    *slot_weight = weight;
}

/// How many of `n` samples to keep to keep a fraction `fraction` (at most 1) of them.
fn thinned_len(n: usize, fraction: f64) -> usize {
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a rounded count no larger than n"
    )]
    let keep = (n as f64 * fraction.min(1.0)).round() as usize;
    keep.min(n)
}

/// The index of the `j`-th of `m` samples picked evenly from `n` (`m <= n`): the middle of
/// the `j`-th of `m` equal strides. Increasing in `j` and never below it.
fn pick(j: usize, n: usize, m: usize) -> usize {
    ((2 * j + 1) * n / (2 * m)).min(n - 1)
}

/// The nearest-rank percentile of sorted, non-empty `sorted`: the smallest value with at least
/// a fraction `q` of the samples at or below it.
pub(super) fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "a sample count")]
    let x = q * sorted.len() as f64;
    // q·n that is an integer up to float noise (0.07 × 100 = 7.000000000000001) is that
    // integer, not the next one.
    let rank = if (x - x.round()).abs() < 1e-9 {
        x.round()
    } else {
        x.ceil()
    };
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a rank within the slice"
    )]
    let rank = (rank as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `.p50` for 0.5, `.p99` for 0.99, `.p999` for 0.999, `.p75` for 0.75.
pub(crate) fn percentile_suffix(q: f64) -> String {
    // From the decimal form of q, not q * 100 (which gives 7.000000000000001 for 0.07): move
    // the point two places right and drop it.
    let text = format!("{q:.9}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let frac = format!("{frac:0<2}");
    let (whole, rest) = frac.split_at(2);
    let percent = format!("{}{whole}", if int == "0" { "" } else { int })
        .trim_start_matches('0')
        .to_owned();
    format!(
        ".p{}{rest}",
        if percent.is_empty() { "0" } else { &percent }
    )
}

#[cfg(test)]
#[path = "summary_tests.rs"]
mod tests;

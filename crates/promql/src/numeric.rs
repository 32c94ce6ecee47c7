//! Numeric helpers shared by the evaluator's kernels: float comparison
//! with Go's tolerance rules. A leaf: nothing here imports the rest of the
//! crate.

/// Go's `almost.Equal`: relative tolerance, NaN equals NaN, stale markers
/// only equal stale markers.
pub fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    let (sa, sb) = (cairn_model::is_stale_nan(a), cairn_model::is_stale_nan(b));
    if sa || sb {
        return sa && sb;
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let min_normal = f64::from_bits(0x0010_0000_0000_0000);
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < eps * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

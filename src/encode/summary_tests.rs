use super::*;

#[test]
fn percentile_suffixes_drop_the_decimal_point() {
    for (q, want) in [
        (0.5, ".p50"),
        (0.9, ".p90"),
        (0.99, ".p99"),
        (0.999, ".p999"),
        (0.75, ".p75"),
        (1.0, ".p100"),
    ] {
        assert_eq!(percentile_suffix(q), want);
    }
}

#[test]
fn percentiles_use_the_decimal_form_of_the_quantile_and_the_true_nearest_rank() {
    for (q, want) in [
        (0.07, ".p7"),
        (0.29, ".p29"),
        (0.57, ".p57"),
        (0.55, ".p55"),
        (0.125, ".p125"),
        (0.0125, ".p125"),
        (0.99999, ".p99999"),
        (0.001, ".p01"),
    ] {
        assert_eq!(percentile_suffix(q), want, "{q}");
    }
    let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(nearest_rank(&hundred, 0.07).to_bits(), 7.0f64.to_bits());
    assert_eq!(nearest_rank(&hundred, 0.55).to_bits(), 55.0f64.to_bits());
    assert_eq!(nearest_rank(&hundred, 0.001).to_bits(), 1.0f64.to_bits());
    assert_eq!(nearest_rank(&hundred, 1.0).to_bits(), 100.0f64.to_bits());
}

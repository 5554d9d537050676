//! `tanh` and `exp` of many `f32` values at once, in operations the compiler
//! vectorises, where flex calls the C library's scalar `tanhf` and `expf`
//! one value at a time.

/// [`tanh`] of every value, in place.
pub(crate) fn tanh_in_place(values: &mut [f32]) {
    map_in_place(values, tanh);
}

/// `e^{−y}` of every value `y ≥ 0`, in place (0 above 87, where `e^{−y}`
/// leaves the normal floats; NaN stays NaN).
pub(crate) fn exp_minus_in_place(values: &mut [f32]) {
    map_in_place(values, exp_minus);
}

/// `f` of every value, sixteen at a time, with AVX-512 where the processor
/// has it (a plain loop over the values was compiled to scalar operations
/// inside the RNN's forward pass: 3.4 ns a value, against 1 ns).
#[inline(always)]
fn map_in_place(values: &mut [f32], f: impl Fn(f32) -> f32 + Copy) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the processor has AVX-512F (checked above).
        return unsafe { by_sixteen_avx512(values, f) };
    }
    by_sixteen(values, f);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn by_sixteen_avx512(values: &mut [f32], f: impl Fn(f32) -> f32 + Copy) {
    by_sixteen(values, f);
}

#[inline(always)]
fn by_sixteen(values: &mut [f32], f: impl Fn(f32) -> f32 + Copy) {
    let mut chunks = values.chunks_exact_mut(16);
    for chunk in &mut chunks {
        let chunk: &mut [f32; 16] = chunk.try_into().expect("16 values");
        for v in chunk.iter_mut() {
            *v = f(*v);
        }
    }
    chunks.into_remainder().iter_mut().for_each(|v| *v = f(*v));
}

/// `e^{−y}` for `0 ≤ y ≤ 87` as `(q, m)` with `e^{−y} = q + q · m`: `q =
/// 2^{−n}` for `n = round(y / ln 2)` (at most 126, so `q` is a normal
/// float), and `m = e^{−r} − 1` for `r = y − n ln 2`, within `ln 2 / 2` of
/// zero, from its Taylor polynomial of degree 7 (kept apart from the 1, so
/// that `1 − e^{−y}` loses nothing in [`tanh`]).
#[inline(always)]
fn exp_minus_parts(y: f32) -> (f32, f32) {
    // Adding 1.5 · 2²³ rounds to an integer, whose value the low bits of the
    // sum hold (a float-to-integer conversion is not vectorised).
    const ROUND: f32 = 12_582_912.0;
    let shifted = y * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    // ln 2 split so that n · LN2_HIGH is exact for n below 2⁸.
    const LN2_HIGH: f32 = 0.693_145_75;
    const LN2_LOW: f32 = 1.428_606_8e-6;
    let u = n * LN2_LOW - (y - n * LN2_HIGH);
    let m = u
        * (1.0
            + u * (1.0 / 2.0
                + u * (1.0 / 6.0
                    + u * (1.0 / 24.0 + u * (1.0 / 120.0 + u * (1.0 / 720.0 + u / 5040.0))))));
    // Wrapping arithmetic: the overflow checks of this crate's builds keep
    // the loop from being vectorised.
    let q = f32::from_bits(127u32.wrapping_sub(n_bits) << 23);
    (q, m)
}

/// `e^{−y}` for `y ≥ 0`, within two units in the last place (test below).
#[inline(always)]
fn exp_minus(y: f32) -> f32 {
    // The comparisons leave NaN as it is.
    let (q, m) = exp_minus_parts(if y > 87.0 { 87.0 } else { y });
    if y > 87.0 { 0.0 } else { q + q * m }
}

/// `tanh(x)`: an odd Taylor polynomial below 1/4, where it is exact to
/// `f32`, and `(1 − e^{−2|x|}) / (1 + e^{−2|x|})` above. Within two units in
/// the last place (test below); NaN stays NaN.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    // tanh(9) rounds to 1 in f32; the comparison leaves NaN as it is.
    let a = if x.abs() > 9.0 { 9.0 } else { x.abs() };
    let s = a * a;
    let series = a
        * (1.0
            - s * (1.0 / 3.0
                - s * (2.0 / 15.0
                    - s * (17.0 / 315.0 - s * (62.0 / 2835.0 - s * (1382.0 / 155_925.0))))));
    let (q, m) = exp_minus_parts(2.0 * a);
    let large = ((1.0 - q) - q * m) / ((1.0 + q) + q * m);
    let t = if a < 0.25 { series } else { large };
    t.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest distance of `f` from `exact` in units in the last place of
    /// the exact value, over every 97th `f32` in `[from, to)` (and its
    /// negative where `both_signs`).
    fn worst_ulps(
        from: f32,
        to: f32,
        both_signs: bool,
        f: impl Fn(f32) -> f32,
        exact: impl Fn(f64) -> f64,
    ) -> f64 {
        let mut worst = 0.0f64;
        let mut bits = from.to_bits();
        while f32::from_bits(bits) < to {
            let x = f32::from_bits(bits);
            for x in if both_signs { vec![x, -x] } else { vec![x] } {
                let e = exact(x as f64);
                let ulp = (e as f32).abs().max(f32::MIN_POSITIVE);
                let ulp = (f32::from_bits(ulp.to_bits() + 1) - ulp) as f64;
                worst = worst.max((f(x) as f64 - e).abs() / ulp);
            }
            bits += 97;
        }
        worst
    }

    #[test]
    fn tanh_is_within_two_units_in_the_last_place() {
        let worst = worst_ulps(0.0, 10.0, true, tanh, f64::tanh);
        assert!(worst <= 2.0, "{worst} units in the last place");
        assert_eq!(tanh(30.0), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert!(tanh(f32::NAN).is_nan());
        assert!(tanh(-0.0).is_sign_negative());
    }

    #[test]
    fn exp_minus_is_within_two_units_in_the_last_place() {
        let worst = worst_ulps(0.0, 87.0, false, exp_minus, |y| (-y).exp());
        assert!(worst <= 2.0, "{worst} units in the last place");
        assert_eq!(exp_minus(0.0), 1.0);
        assert_eq!(exp_minus(1e4), 0.0);
        assert_eq!(exp_minus(f32::INFINITY), 0.0);
        assert!(exp_minus(f32::NAN).is_nan());
    }

    #[test]
    fn slices_of_every_length_are_mapped_whole() {
        // Lengths around the sixteen of a chunk, with and without AVX-512.
        for len in [0, 1, 15, 16, 17, 40] {
            let xs: Vec<f32> = (0..len).map(|i| i as f32 * 0.37 - 3.0).collect();
            let mut got = xs.clone();
            tanh_in_place(&mut got);
            let mut plain = xs.clone();
            by_sixteen(&mut plain, tanh);
            let expected: Vec<f32> = xs.iter().map(|&x| tanh(x)).collect();
            assert_eq!(got, expected, "{len}");
            assert_eq!(plain, expected, "{len}");
        }
    }
}

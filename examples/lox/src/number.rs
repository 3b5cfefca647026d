//! Number printing exactly as C's `printf("%g", x)` does it, which is how
//! clox prints every number.
//!
//! `%g` with the default precision P = 6: let X be the decimal exponent that
//! `%e` would print after rounding to P significant digits. If `X < -4` or
//! `X >= P`, print in `%e` style with P - 1 fraction digits; otherwise print in
//! `%f` style with P - 1 - X fraction digits. Either way trailing zeros of the
//! fraction, and a then-trailing decimal point, are removed. The exponent has
//! a sign and at least two digits. Infinities are `inf`/`-inf`, NaNs are
//! `nan` or `-nan` by their sign bit, and negative zero keeps its sign.
//!
//! Rust's `{:.Ne}` and `{:.N}` formats are correctly rounded from the exact
//! binary value, with ties to even, as glibc's are, so the digits agree; only
//! the layout rules above are ours. Formatting goes through a fixed stack
//! buffer, so printing a number allocates nothing.

use std::fmt::{self, Write as _};

/// Displays a number as C's `%g` does.
#[derive(Clone, Copy, Debug)]
pub struct FormatG(pub f64);

impl fmt::Display for FormatG {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        if x.is_nan() {
            return f.write_str(if x.is_sign_negative() { "-nan" } else { "nan" });
        }
        if x.is_infinite() {
            return f.write_str(if x < 0.0 { "-inf" } else { "inf" });
        }
        if x == 0.0 {
            return f.write_str(if x.is_sign_negative() { "-0" } else { "0" });
        }
        // Fast path: integers below 10^6 print as themselves. The cast is
        // exact because |x| < 10^6.
        if x.fract() == 0.0 && x.abs() < 1e6 {
            return write!(f, "{}", x as i64);
        }
        let mut scientific = StackBuf::new();
        write!(scientific, "{x:.5e}")?;
        let (mantissa, exponent) = scientific
            .as_str()
            .split_once('e')
            .expect("`{:e}` output always has an exponent");
        let exponent: i32 = exponent.parse().expect("`{:e}` exponent is an integer");
        if !(-4..6).contains(&exponent) {
            let sign = if exponent < 0 { '-' } else { '+' };
            write!(
                f,
                "{}e{sign}{:02}",
                strip_fraction_zeros(mantissa),
                exponent.unsigned_abs()
            )
        } else {
            let decimals = usize::try_from(5 - exponent).expect("exponent is below 6");
            let mut fixed = StackBuf::new();
            write!(fixed, "{x:.decimals$}")?;
            f.write_str(strip_fraction_zeros(fixed.as_str()))
        }
    }
}

/// `digits` without trailing zeros after a decimal point, and without the
/// point if nothing follows it.
fn strip_fraction_zeros(digits: &str) -> &str {
    if !digits.contains('.') {
        return digits;
    }
    digits.trim_end_matches('0').trim_end_matches('.')
}

/// A fixed-size `fmt::Write` sink. 32 bytes hold any `%.5e` rendering and any
/// `%f` rendering with at most 9 fraction digits of a number below 10^6,
/// which is all `FormatG` asks of it.
struct StackBuf {
    bytes: [u8; 32],
    len: usize,
}

impl StackBuf {
    fn new() -> StackBuf {
        StackBuf {
            bytes: [0; 32],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).expect("only whole `str`s are written")
    }
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::FormatG;

    /// Expectations checked against glibc's `printf("%g")`.
    const CASES: &[(f64, &str)] = &[
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (-1.0, "-1"),
        (123.0, "123"),
        (999999.0, "999999"),
        (1000000.0, "1e+06"),
        (-1000000.0, "-1e+06"),
        (1234567.0, "1.23457e+06"),
        (9999995.0, "1e+07"),
        (999999.5, "1e+06"),
        (123456.7, "123457"),
        (12345.67, "12345.7"),
        (0.1, "0.1"),
        (0.5, "0.5"),
        (1.5, "1.5"),
        (2.5, "2.5"),
        (0.1 + 0.2, "0.3"),
        (1.0 / 3.0, "0.333333"),
        (2.0 / 3.0, "0.666667"),
        (100.0 / 3.0, "33.3333"),
        (0.0001, "0.0001"),
        (0.00012345, "0.00012345"),
        (0.000123456789, "0.000123457"),
        (0.00001, "1e-05"),
        (0.000012345, "1.2345e-05"),
        (1e-10, "1e-10"),
        (1e100, "1e+100"),
        (1.7976931348623157e308, "1.79769e+308"),
        (5e-324, "4.94066e-324"),
        (123456789012.0, "1.23457e+11"),
        (std::f64::consts::PI, "3.14159"),
        (-std::f64::consts::PI, "-3.14159"),
        (std::f64::consts::E, "2.71828"),
        (1.0000005, "1"),
        (1.000005, "1.00001"),
        (0.125, "0.125"),
        (1e15, "1e+15"),
        (4503599627370496.5, "4.5036e+15"),
        (0.30000000000000004, "0.3"),
        (1e21, "1e+21"),
        (12.5, "12.5"),
        (99999.95, "99999.9"),
        (99999.95000001, "100000"),
        (0.00009999995, "0.0001"),
        (8.5, "8.5"),
        (1234.5, "1234.5"),
        (65536.0 * 65536.0, "4.29497e+09"),
        (-123.456, "-123.456"),
        (1234.125, "1234.12"),
        (1234.375, "1234.38"),
        (1234565.0, "1.23456e+06"),
        (1234575.0, "1.23458e+06"),
        (0.000123455, "0.000123455"),
        (5e-5, "5e-05"),
        (0.00001234565, "1.23456e-05"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
        (f64::NAN, "nan"),
        (-f64::NAN, "-nan"),
    ];

    #[test]
    fn matches_printf_percent_g() {
        let mut failures = Vec::new();
        for &(x, expected) in CASES {
            let got = FormatG(x).to_string();
            if got != expected {
                failures.push(format!("{x:e}: expected {expected}, got {got}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

//! Shamir's secret sharing over GF(2^8), for splitting the root key among custodians.
//!
//! Each byte of the secret is the constant term of a random polynomial of degree `M - 1`;
//! share `x` (1..=255) holds the polynomial's values at `x`. Any `M` shares give the secret
//! back by Lagrange interpolation at 0; fewer give no information about it.
//!
//! The field arithmetic is written without secret-dependent branches or table lookups
//! (multiplication by shift-and-add with masks, inversion by exponentiation), so the time it
//! takes does not depend on the key or the shares. The field is the AES one (reduction
//! polynomial x^8 + x^4 + x^3 + x + 1), as in most Shamir tools.

use arca_core::{Error, Result};
use zeroize::Zeroizing;

/// Constant-time multiplication in GF(2^8).
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    for _ in 0..8 {
        // p ^= a if the low bit of b is set, without a branch.
        p ^= a & (b & 1).wrapping_neg();
        let carry = (a >> 7).wrapping_neg();
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    p
}

/// Inverse by a^254 (a^255 = 1 for a != 0); 0 maps to 0, which callers never pass.
fn inv(a: u8) -> u8 {
    let mut r = 1u8;
    let mut base = a;
    let mut e = 254u8;
    for _ in 0..8 {
        let m = (e & 1).wrapping_neg();
        r = (mul(r, base) & m) | (r & !m);
        base = mul(base, base);
        e >>= 1;
    }
    r
}

/// One share: its x coordinate (1..=255) and one byte per byte of the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Share {
    pub x: u8,
    pub y: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("x", &self.x)
            .finish_non_exhaustive()
    }
}

/// Splits `secret` into `n` shares, any `m` of which recover it (1 <= m <= n <= 255).
/// `random` fills a buffer with cryptographically secure random bytes.
pub fn split(
    secret: &[u8],
    m: u8,
    n: u8,
    random: &mut dyn FnMut(&mut [u8]) -> Result<()>,
) -> Result<Vec<Share>> {
    if m == 0 || n == 0 || m > n {
        return Err(Error::invalid(
            "threshold",
            format!("need 1 <= threshold ({m}) <= shares ({n}) <= 255"),
        ));
    }
    if secret.is_empty() {
        return Err(Error::invalid("secret", "nothing to split"));
    }
    // coefficients[j][i]: coefficient of x^(i+1) for secret byte j.
    let mut coeffs = Zeroizing::new(vec![0u8; secret.len() * (m as usize - 1)]);
    random(&mut coeffs)?;
    let mut shares: Vec<Share> = (1..=n)
        .map(|x| Share {
            x,
            y: Zeroizing::new(vec![0u8; secret.len()]),
        })
        .collect();
    let k = m as usize - 1;
    for (j, s) in secret.iter().enumerate() {
        let c = &coeffs[j * k..(j + 1) * k];
        for share in shares.iter_mut() {
            // Horner: ((c_{k} x + c_{k-1}) x + ... + c_1) x + s
            let mut acc = 0u8;
            for ci in c.iter().rev() {
                acc = mul(acc, share.x) ^ ci;
            }
            share.y[j] = mul(acc, share.x) ^ s;
        }
    }
    Ok(shares)
}

/// Recovers the secret from shares (at least the threshold; all must have distinct,
/// non-zero x and equal lengths). With fewer shares than the threshold the result is a
/// wrong secret, not an error: callers check it against a stored verifier.
pub fn combine(shares: &[Share]) -> Result<Zeroizing<Vec<u8>>> {
    let Some(first) = shares.first() else {
        return Err(Error::invalid("shares", "no share given"));
    };
    let len = first.y.len();
    for (i, s) in shares.iter().enumerate() {
        if s.x == 0 {
            return Err(Error::invalid("share", "a share's index is never 0"));
        }
        if s.y.len() != len {
            return Err(Error::invalid("share", "the shares have different lengths"));
        }
        if shares[..i].iter().any(|o| o.x == s.x) {
            return Err(Error::invalid(
                "share",
                format!("share {} was given twice", s.x),
            ));
        }
    }
    let mut out = Zeroizing::new(vec![0u8; len]);
    for (i, si) in shares.iter().enumerate() {
        // Lagrange basis at 0: prod_{j != i} x_j / (x_j - x_i); in GF(2^8), minus is xor.
        let mut num = 1u8;
        let mut den = 1u8;
        for (j, sj) in shares.iter().enumerate() {
            if i != j {
                num = mul(num, sj.x);
                den = mul(den, sj.x ^ si.x);
            }
        }
        let l = mul(num, inv(den));
        for (o, y) in out.iter_mut().zip(si.y.iter()) {
            *o ^= mul(l, *y);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rng() -> impl FnMut(&mut [u8]) -> Result<()> {
        |b: &mut [u8]| {
            aws_lc_rs::rand::fill(b).map_err(|_| Error::internal("rng"))?;
            Ok(())
        }
    }

    /// Slow reference multiplication, to check the constant-time one.
    fn mul_ref(a: u8, b: u8) -> u8 {
        let mut r: u16 = 0;
        for i in 0..8 {
            if b & (1 << i) != 0 {
                r ^= (a as u16) << i;
            }
        }
        for i in (8..15).rev() {
            if r & (1 << i) != 0 {
                r ^= 0x11b << (i - 8);
            }
        }
        r as u8
    }

    #[test]
    fn field_arithmetic() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), mul_ref(a, b), "{a} * {b}");
            }
            if a != 0 {
                assert_eq!(mul(a, inv(a)), 1, "inverse of {a}");
            }
        }
        // The AES field's known product (FIPS 197 §4.2): {57} x {83} = {c1}.
        assert_eq!(mul(0x57, 0x83), 0xc1);
    }

    #[test]
    fn any_m_of_n_recover_and_fewer_do_not() {
        let secret = [7u8; 32];
        let shares = split(&secret, 3, 5, &mut rng()).unwrap();
        for a in 0..5 {
            for b in 0..5 {
                for c in 0..5 {
                    if a < b && b < c {
                        let got =
                            combine(&[shares[a].clone(), shares[b].clone(), shares[c].clone()])
                                .unwrap();
                        assert_eq!(&got[..], &secret[..]);
                    }
                }
            }
        }
        let two = combine(&shares[..2]).unwrap();
        assert_ne!(&two[..], &secret[..], "M-1 shares give a wrong secret");
        let mut bad = shares[..3].to_vec();
        bad[1].y[0] ^= 1;
        assert_ne!(
            &combine(&bad).unwrap()[..],
            &secret[..],
            "a wrong share gives a wrong secret"
        );
        assert!(combine(&[shares[0].clone(), shares[0].clone()]).is_err());
        assert!(split(&secret, 4, 3, &mut rng()).is_err());
        assert!(split(&secret, 0, 3, &mut rng()).is_err());
    }

    #[test]
    fn debug_hides_the_share() {
        let s = split(&[0xAB; 4], 1, 1, &mut rng()).unwrap();
        assert!(!format!("{:?}", s[0]).contains("171"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn round_trip(secret in proptest::collection::vec(any::<u8>(), 1..64), m in 1u8..6, extra in 0u8..4, pick in any::<u64>()) {
            let n = m + extra;
            let shares = split(&secret, m, n, &mut rng()).unwrap();
            // A pseudo-random subset of exactly m shares.
            let mut idx: Vec<usize> = (0..n as usize).collect();
            let mut p = pick;
            for i in (1..idx.len()).rev() {
                let j = (p % (i as u64 + 1)) as usize;
                p /= i as u64 + 1;
                idx.swap(i, j);
            }
            let subset: Vec<Share> = idx[..m as usize].iter().map(|&i| shares[i].clone()).collect();
            prop_assert_eq!(&combine(&subset).unwrap()[..], &secret[..]);
        }
    }
}

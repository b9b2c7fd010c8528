//! G.711 µ-law and A-law (ITU-T G.711), sample by sample.

pub fn ulaw_encode(s: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut v = i32::from(s);
    let sign = if v < 0 {
        v = -v;
        0x80
    } else {
        0
    };
    v = v.min(CLIP) + BIAS;
    let exponent = (7 - (v as u32).leading_zeros().saturating_sub(17).min(7)) as i32;
    let mantissa = (v >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

pub fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let exponent = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0f);
    let v = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -v } else { v }) as i16
}

pub fn alaw_encode(s: i16) -> u8 {
    let mut v = i32::from(s);
    let sign = if v >= 0 { 0x80 } else { 0 };
    if v < 0 {
        v = -v - 1;
    }
    v = v.min(32767) >> 3;
    let code = if v < 32 {
        v >> 1
    } else {
        let exponent = 31 - (v as u32).leading_zeros() as i32 - 4;
        (exponent << 4) | ((v >> exponent) & 0x0f)
    };
    ((sign | code) as u8) ^ 0x55
}

pub fn alaw_decode(a: u8) -> i16 {
    let a = a ^ 0x55;
    let sign = a & 0x80;
    let exponent = i32::from((a >> 4) & 0x07);
    let mantissa = i32::from(a & 0x0f);
    let v = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if sign != 0 { v } else { -v }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_within_quantisation_error() {
        for s in (-32768i32..=32767).step_by(7) {
            let s = s as i16;
            let err = |d: i16| (i32::from(d) - i32::from(s)).abs();
            // Logarithmic steps: the error grows with the magnitude, at most ~1/16 of it.
            let bound = (i32::from(s).abs() / 16).max(16);
            assert!(
                err(ulaw_decode(ulaw_encode(s))) <= bound,
                "µ-law {s} -> {}",
                ulaw_decode(ulaw_encode(s))
            );
            assert!(
                err(alaw_decode(alaw_encode(s))) <= bound,
                "A-law {s} -> {}",
                alaw_decode(alaw_encode(s))
            );
        }
    }

    #[test]
    fn known_code_words() {
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(alaw_encode(0), 0xd5);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
    }
}

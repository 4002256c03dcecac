//! Canonical JSON: the one text form of a value that task identity is computed from.
//!
//! Object keys are sorted (by their UTF-8 bytes) whatever the map type or crate features;
//! no whitespace; strings escaped as serde_json escapes them. Numbers are written so that
//! equal values give equal text: an integral value is written as an integer whether it was
//! `1` or `1.0` (up to 2^53, where floats stop being exact integers), `-0.0` is `0`, and
//! every other float is written in its shortest round-trip form (serde_json's `ryu`), which
//! is the same on every machine.
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// The canonical text of `value`.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// Appends the canonical text of `value` to `out`.
pub fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

/// Appends the canonical text of a JSON object.
pub fn write_object(out: &mut String, map: &Map<String, Value>) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, k);
        out.push(':');
        write_value(out, v);
    }
    out.push('}');
}

/// Appends a JSON string literal, escaped exactly as serde_json escapes it: `"` and `\\`,
/// the short forms `\b \f \n \r \t`, other control characters as `\u00XX`, nothing else.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

const EXACT_INT_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else {
        let x = n.as_f64().unwrap_or(f64::NAN);
        if x == 0.0 {
            out.push('0');
        } else if x.fract() == 0.0 && x.abs() <= EXACT_INT_LIMIT {
            let _ = write!(out, "{}", x as i64);
        } else {
            // Number::from_f64 keeps the value; serde_json prints it with ryu.
            out.push_str(&n.to_string());
        }
    }
}

/// Lower-case hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_and_numbers_normalised() {
        let v = json!({"b": 1.0, "a": {"z": -0.0, "y": [0.1, 1e-7, 2.5]}, "c": "é\"x"});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"y":[0.1,1e-7,2.5],"z":0},"b":1,"c":"é\"x"}"#
        );
    }

    #[test]
    fn integer_and_integral_float_are_the_same_text() {
        assert_eq!(canonical_json(&json!(200)), canonical_json(&json!(200.0)));
        assert_ne!(
            canonical_json(&json!(0.1)),
            canonical_json(&json!(0.10000001))
        );
    }

    #[test]
    fn strings_are_escaped_like_serde_json() {
        for s in [
            "plain",
            "q\"b\\s",
            "nl\n\r\t\u{8}\u{c}",
            "\u{1}\u{1f}",
            "é ü 漢 /",
            "",
        ] {
            let mut out = String::new();
            write_string(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}

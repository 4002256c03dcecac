//! Typed access to the parameters of a model or metric spec, checked against one table
//! per model (name, type, default, help) that is also what `synthsweep models` prints.
use crate::error::{ModelError, Result};
use serde_json::{Map, Value};

/// One documented parameter: the single source of its name, type and default.
#[derive(Debug, Clone, Copy)]
pub struct ParamDoc {
    /// The key in the spec, as plenoptic's constructor argument is named.
    pub name: &'static str,
    /// Human description of the type, e.g. `int or [int, int]`.
    pub ty: &'static str,
    /// The default as JSON text (`null` = none / drawn at random, see `help`).
    pub default: &'static str,
    /// One line for `synthsweep models`: what the parameter does, its unit and accepted range.
    pub help: &'static str,
}

/// The parameters of one spec, with every lookup checked against its [`ParamDoc`] table.
#[derive(Debug)]
pub struct Params<'a> {
    owner: String,
    docs: &'a [ParamDoc],
    values: Map<String, Value>,
}

impl<'a> Params<'a> {
    /// Checks that `values` holds only documented keys.
    pub fn new(owner: &str, docs: &'a [ParamDoc], values: Map<String, Value>) -> Result<Self> {
        for key in values.keys() {
            if !docs.iter().any(|d| d.name == key) {
                let valid = if docs.is_empty() {
                    "(none)".to_string()
                } else {
                    docs.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
                };
                return Err(ModelError::UnknownParam {
                    owner: owner.to_string(),
                    param: key.clone(),
                    valid,
                });
            }
        }
        Ok(Params {
            owner: owner.to_string(),
            docs,
            values,
        })
    }

    /// The model or metric name these parameters belong to (used in error messages).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The user's value, or the documented default.
    pub fn value(&self, name: &str) -> Value {
        if let Some(v) = self.values.get(name) {
            return v.clone();
        }
        let doc = self
            .docs
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{}: parameter `{name}` is not in its table", self.owner));
        serde_json::from_str(doc.default)
            .unwrap_or_else(|e| panic!("{}.{name}: bad default {}: {e}", self.owner, doc.default))
    }

    /// Whether the user gave this parameter.
    pub fn given(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    fn err(&self, name: &str, msg: impl Into<String>) -> ModelError {
        ModelError::invalid(&self.owner, name, msg)
    }

    /// A number. Errors: [`ModelError::InvalidParam`] when the value is not a JSON number.
    pub fn f64(&self, name: &str) -> Result<f64> {
        let v = self.value(name);
        v.as_f64()
            .ok_or_else(|| self.err(name, format!("expected a number, got {v}")))
    }

    /// A finite number > 0. Errors: [`ModelError::InvalidParam`] otherwise.
    pub fn positive_f64(&self, name: &str) -> Result<f64> {
        let x = self.f64(name)?;
        if x > 0.0 && x.is_finite() {
            Ok(x)
        } else {
            Err(self.err(name, format!("expected a positive number, got {x}")))
        }
    }

    /// A number, or `None` for `null`. Errors: [`ModelError::InvalidParam`] for any other value.
    pub fn opt_f64(&self, name: &str) -> Result<Option<f64>> {
        match self.value(name) {
            Value::Null => Ok(None),
            _ => self.f64(name).map(Some),
        }
    }

    /// `true` or `false`. Errors: [`ModelError::InvalidParam`] for any other value.
    pub fn bool(&self, name: &str) -> Result<bool> {
        let v = self.value(name);
        v.as_bool()
            .ok_or_else(|| self.err(name, format!("expected true or false, got {v}")))
    }

    /// An integer >= 0. Errors: [`ModelError::InvalidParam`] for a negative, fractional or non-number value.
    pub fn usize(&self, name: &str) -> Result<usize> {
        let v = self.value(name);
        v.as_u64()
            .map(|x| x as usize)
            .ok_or_else(|| self.err(name, format!("expected a non-negative integer, got {v}")))
    }

    /// An integer >= 1. Errors: [`ModelError::InvalidParam`] otherwise.
    pub fn positive_usize(&self, name: &str) -> Result<usize> {
        let n = self.usize(name)?;
        if n == 0 {
            return Err(self.err(name, "expected a positive integer, got 0"));
        }
        Ok(n)
    }

    /// `k` or `[kh, kw]`, each positive.
    pub fn kernel_size(&self, name: &str) -> Result<(i64, i64)> {
        let v = self.value(name);
        let bad = || {
            self.err(
                name,
                format!("expected a positive int or [int, int], got {v}"),
            )
        };
        let pair = match &v {
            Value::Number(n) => {
                let k = n.as_u64().ok_or_else(bad)?;
                (k, k)
            }
            Value::Array(a) if a.len() == 2 => (
                a[0].as_u64().ok_or_else(bad)?,
                a[1].as_u64().ok_or_else(bad)?,
            ),
            _ => return Err(bad()),
        };
        if pair.0 == 0 || pair.1 == 0 {
            return Err(bad());
        }
        Ok((pair.0 as i64, pair.1 as i64))
    }

    /// `[h, w]` or null.
    pub fn opt_shape(&self, name: &str) -> Result<Option<(i64, i64)>> {
        match self.value(name) {
            Value::Null => Ok(None),
            _ => self.kernel_size(name).map(Some),
        }
    }

    /// One of the listed strings.
    pub fn choice(&self, name: &str, valid: &[&str]) -> Result<String> {
        let v = self.value(name);
        match v.as_str() {
            Some(s) if valid.contains(&s) => Ok(s.to_string()),
            _ => Err(self.err(
                name,
                format!("expected one of {}, got {v}", valid.join(", ")),
            )),
        }
    }

    /// A number (broadcast to `n` entries) or a list of exactly `n` numbers, or null.
    pub fn opt_f64_list(&self, name: &str, n: usize) -> Result<Option<Vec<f64>>> {
        let v = self.value(name);
        let bad = || {
            self.err(
                name,
                format!("expected a number or a list of {n} numbers, got {v}"),
            )
        };
        match &v {
            Value::Null => Ok(None),
            Value::Number(x) => Ok(Some(vec![x.as_f64().ok_or_else(bad)?; n])),
            Value::Array(a) if a.len() == n => a
                .iter()
                .map(|x| x.as_f64().ok_or_else(bad))
                .collect::<Result<Vec<_>>>()
                .map(Some),
            _ => Err(bad()),
        }
    }

    /// A non-empty list of numbers.
    pub fn f64_list(&self, name: &str) -> Result<Vec<f64>> {
        let v = self.value(name);
        let bad = || {
            self.err(
                name,
                format!("expected a non-empty list of numbers, got {v}"),
            )
        };
        match &v {
            Value::Array(a) if !a.is_empty() => {
                a.iter().map(|x| x.as_f64().ok_or_else(bad)).collect()
            }
            _ => Err(bad()),
        }
    }

    /// The raw JSON value (for nested specs).
    pub fn raw(&self, name: &str) -> Value {
        self.value(name)
    }
}

/// Splits a spec `{"name": ..., params...}` into its name and parameter map.
pub fn split_spec(kind: &str, spec: &Value) -> Result<(String, Map<String, Value>)> {
    let Value::Object(map) = spec else {
        return Err(ModelError::Spec(format!(
            "a {kind} spec must be a JSON object like {{\"name\": \"...\", ...}}, got {spec}"
        )));
    };
    let mut map = map.clone();
    let name = match map.remove("name") {
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(ModelError::Spec(format!(
                "{kind} spec: `name` must be a string, got {other}"
            )))
        }
        None => {
            return Err(ModelError::Spec(format!(
                "{kind} spec {spec} has no `name`"
            )))
        }
    };
    Ok((name, map))
}

/// Parses spec text given on the command line or in a file: a bare name (`ms_ssim`, as a
/// sweep spec's `metric = "ms_ssim"`), a JSON string (`"ms_ssim"`), or a JSON object
/// (`{"name": "ms_ssim", "weights": [...]}`); a name becomes `{"name": ...}`.
///
/// # Errors
/// Text that is neither a name (letters, digits, `_`, `-`) nor JSON.
pub fn parse_spec_text(kind: &str, text: &str) -> Result<Value> {
    let name = |s: &str| {
        let mut m = Map::new();
        m.insert("name".into(), Value::String(s.to_string()));
        Value::Object(m)
    };
    let trimmed = text.trim();
    if !trimmed.is_empty()
        && trimmed
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !trimmed.starts_with(|c: char| c.is_ascii_digit() || c == '-')
    {
        return Ok(name(trimmed));
    }
    match serde_json::from_str(text) {
        Ok(Value::String(s)) => Ok(name(&s)),
        Ok(v) => Ok(v),
        Err(e) => Err(ModelError::Spec(format!(
            "{kind} spec is neither a name (like {}) nor valid JSON ({e}): {text}",
            if kind == "model" { "gaussian" } else { "mse" }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name, bare or as a JSON string, is the spec `{"name": ...}`, as in sweep specs;
    /// JSON objects are kept; anything else is refused.
    #[test]
    fn spec_text_takes_a_bare_name_as_sweeps_do() {
        let ms: Value = serde_json::json!({"name": "ms_ssim"});
        assert_eq!(parse_spec_text("metric", "ms_ssim").unwrap(), ms);
        assert_eq!(parse_spec_text("metric", " ms_ssim\n").unwrap(), ms);
        assert_eq!(parse_spec_text("metric", "\"ms_ssim\"").unwrap(), ms);
        assert_eq!(
            parse_spec_text("metric", r#"{"name":"ms_ssim"}"#).unwrap(),
            ms
        );
        let e = parse_spec_text("model", "{gaussian")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("neither a name (like gaussian) nor valid JSON"),
            "{e}"
        );
        // Numbers stay JSON (refused later as not an object).
        assert_eq!(parse_spec_text("metric", "3").unwrap(), Value::from(3));
    }
}

//! `synthsweep models` / `synthsweep metrics`: names, parameters and defaults from the registry.
use crate::output::outln;
use anyhow::Result;
use serde_json::{json, Value};
use synthsweep_models::params::ParamDoc;
use synthsweep_models::registry::{METRICS, MODELS};

fn entry_json(name: &str, help: &str, params: &[ParamDoc]) -> Value {
    let params: Vec<Value> = params
        .iter()
        .map(|p| {
            let default: Value = serde_json::from_str(p.default).unwrap_or(Value::Null);
            json!({"name": p.name, "type": p.ty, "default": default, "help": p.help})
        })
        .collect();
    json!({"name": name, "help": help, "params": params})
}

fn print_table(entries: &[Value]) -> Result<()> {
    for e in entries {
        outln!(
            "{}  —  {}",
            e["name"].as_str().unwrap_or(""),
            e["help"].as_str().unwrap_or("")
        )?;
        for p in e["params"].as_array().into_iter().flatten() {
            outln!(
                "    {:<22} {:<20} default {:<12} {}",
                p["name"].as_str().unwrap_or(""),
                p["type"].as_str().unwrap_or(""),
                p["default"].to_string(),
                p["help"].as_str().unwrap_or("")
            )?;
        }
    }
    Ok(())
}

fn print(entries: Vec<Value>, as_json: bool) -> Result<()> {
    if as_json {
        outln!("{}", serde_json::to_string_pretty(&entries)?)?;
    } else {
        print_table(&entries)?;
    }
    Ok(())
}

pub fn models(as_json: bool) -> Result<()> {
    print(
        MODELS
            .iter()
            .map(|e| entry_json(e.name, e.help, (e.params)()))
            .collect(),
        as_json,
    )
}

pub fn metrics(as_json: bool) -> Result<()> {
    print(
        METRICS
            .iter()
            .map(|e| entry_json(e.name, e.help, (e.params)()))
            .collect(),
        as_json,
    )
}

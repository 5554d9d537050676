//! `--set a.b.c=value`: nanoGPT-style overrides of a TOML config, refusing
//! keys the config does not have.

/// Applies one `KEY=VALUE` to `table`. The key must already exist (so a typo
/// is an error, not a silently ignored setting); the value is parsed as TOML,
/// or taken as a string when it is not valid TOML.
pub fn apply(table: &mut toml::Table, assignment: &str) -> Result<(), String> {
    let (key, raw) = assignment
        .split_once('=')
        .ok_or_else(|| format!("--set `{assignment}`: expected KEY=VALUE, e.g. train.epochs=5"))?;
    let key = key.trim();
    let value = parse_value(raw.trim());
    let parts: Vec<&str> = key.split('.').collect();
    let (last, parents) = parts.split_last().expect("split yields at least one part");
    let mut current = table;
    let mut path = String::new();
    for part in parents {
        path = if path.is_empty() {
            part.to_string()
        } else {
            format!("{path}.{part}")
        };
        let keys = known_keys(current);
        current = match current.get_mut(*part) {
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err(format!("--set {key}: `{path}` is a value, not a table")),
            None => {
                return Err(format!(
                    "--set {key}: no key `{path}`; known keys here: {keys}"
                ));
            }
        };
    }
    match current.get(*last) {
        Some(old)
            if std::mem::discriminant(old) != std::mem::discriminant(&value)
                && !matches!(
                    (old, &value),
                    (toml::Value::Float(_), toml::Value::Integer(_))
                ) =>
        {
            Err(format!(
                "--set {key}: expected a {} like `{old}`, got `{raw}`",
                old.type_str()
            ))
        }
        Some(_) => {
            let value = match (current.get(*last), value) {
                (Some(toml::Value::Float(_)), toml::Value::Integer(i)) => {
                    toml::Value::Float(i as f64)
                }
                (_, v) => v,
            };
            current.insert(last.to_string(), value);
            Ok(())
        }
        None => Err(format!(
            "--set {key}: no key `{last}`{}; known keys: {}",
            if path.is_empty() {
                String::new()
            } else {
                format!(" in `{path}`")
            },
            known_keys(current)
        )),
    }
}

fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn known_keys(table: &toml::Table) -> String {
    table.keys().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> toml::Table {
        toml::from_str("seeds = 3\nname = \"x\"\n[train]\nepochs = 10\nlearning_rate = 0.001\n")
            .unwrap()
    }

    #[test]
    fn nested_keys_are_replaced_with_typed_values() {
        let mut t = config();
        apply(&mut t, "train.epochs=4").unwrap();
        apply(&mut t, "train.learning_rate=1").unwrap();
        apply(&mut t, "name=abc").unwrap();
        assert_eq!(t["train"]["epochs"].as_integer(), Some(4));
        assert_eq!(t["train"]["learning_rate"].as_float(), Some(1.0));
        assert_eq!(t["name"].as_str(), Some("abc"));
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused_with_the_key_named() {
        let mut t = config();
        let err = apply(&mut t, "train.epoch=4").unwrap_err();
        assert!(
            err.contains("epoch") && err.contains("epochs, learning_rate"),
            "{err}"
        );
        let err = apply(&mut t, "model.width=4").unwrap_err();
        assert!(err.contains("model"), "{err}");
        let err = apply(&mut t, "train.epochs=fast").unwrap_err();
        assert!(err.contains("integer"), "{err}");
        assert!(apply(&mut t, "seeds").unwrap_err().contains("KEY=VALUE"));
    }
}

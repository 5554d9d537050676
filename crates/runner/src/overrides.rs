//! `--set a.b.c=value`: nanoGPT-style overrides of a TOML config, refusing
//! keys the config does not have.

/// Applies one `KEY=VALUE` to `table`. A key the config already has keeps
/// its type; a key it lacks (an optional setting the preset leaves out,
/// such as `train.grad_clip_norm`) is added, tables on its path created, and
/// [`check_applied`] later makes sure the config took it, so that a typo is
/// an error rather than a silently ignored setting. The value is parsed as
/// TOML, or taken as a string when it is not valid TOML. Returns whether
/// the key was added.
pub fn apply(table: &mut toml::Table, assignment: &str) -> Result<bool, String> {
    let (key, raw) = split(assignment)?;
    let value = parse_value(raw);
    let parts: Vec<&str> = key.split('.').collect();
    let (last, parents) = parts.split_last().expect("split yields at least one part");
    let mut current = table;
    for (depth, part) in parents.iter().enumerate() {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(format!(
                    "--set {key}: `{}` is a value, not a table",
                    parents[..=depth].join(".")
                ));
            }
        };
    }
    let value = match (current.get(*last), value) {
        (Some(toml::Value::Float(_)), toml::Value::Integer(i)) => toml::Value::Float(i as f64),
        (Some(old), value) if std::mem::discriminant(old) != std::mem::discriminant(&value) => {
            return Err(format!(
                "--set {key}: expected a {} like `{old}`, got `{raw}`",
                old.type_str()
            ));
        }
        (_, value) => value,
    };
    Ok(current.insert(last.to_string(), value).is_none())
}

/// Fails unless every key set by `assignments` is in `resolved`, the config
/// as deserialised and written back: a key the config type does not have
/// has vanished from it. The message lists the keys that exist there.
pub fn check_applied(resolved: &toml::Table, assignments: &[String]) -> Result<(), String> {
    for assignment in assignments {
        let (key, _) = split(assignment)?;
        let parts: Vec<&str> = key.split('.').collect();
        let mut current = resolved;
        for (depth, part) in parts.iter().enumerate() {
            let is_last = depth + 1 == parts.len();
            match current.get(*part) {
                Some(toml::Value::Table(t)) => current = t,
                Some(_) if is_last => {}
                Some(_) => {
                    return Err(format!(
                        "--set {key}: `{}` is a value, not a table",
                        parts[..=depth].join(".")
                    ));
                }
                None => {
                    let place = match depth {
                        0 => String::new(),
                        _ => format!(" in `{}`", parts[..depth].join(".")),
                    };
                    return Err(format!(
                        "--set {key}: the config has no setting `{part}`{place}; known keys: {}",
                        current.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
    }
    Ok(())
}

fn split(assignment: &str) -> Result<(&str, &str), String> {
    let (key, raw) = assignment
        .split_once('=')
        .ok_or_else(|| format!("--set `{assignment}`: expected KEY=VALUE, e.g. train.epochs=5"))?;
    Ok((key.trim(), raw.trim()))
}

fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
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
    fn absent_keys_are_added_and_checked_against_the_resolved_config() {
        let mut t = config();
        apply(&mut t, "train.grad_clip_norm=0.25").unwrap();
        apply(&mut t, "train.lr_decay.factor=0.5").unwrap();
        assert_eq!(t["train"]["grad_clip_norm"].as_float(), Some(0.25));
        assert_eq!(t["train"]["lr_decay"]["factor"].as_float(), Some(0.5));
        let set = |k: &str| vec![k.to_string()];
        // The config as written back kept the key: accepted.
        assert!(check_applied(&t, &set("train.grad_clip_norm=0.25")).is_ok());
        // A typo the config type dropped: refused, with the keys that exist.
        let resolved = config();
        let err = check_applied(&resolved, &set("train.epoch=4")).unwrap_err();
        assert!(
            err.contains("`epoch` in `train`") && err.contains("epochs, learning_rate"),
            "{err}"
        );
        let err = check_applied(&resolved, &set("model.width=4")).unwrap_err();
        assert!(err.contains("`model`") && err.contains("seeds"), "{err}");
        // A key that names a value as if it were a table.
        let err = check_applied(&resolved, &set("seeds.x=1")).unwrap_err();
        assert!(err.contains("`seeds` is a value"), "{err}");
    }

    #[test]
    fn wrong_types_and_malformed_assignments_are_refused_with_the_key_named() {
        let mut t = config();
        let err = apply(&mut t, "train.epochs=fast").unwrap_err();
        assert!(
            err.contains("train.epochs") && err.contains("integer"),
            "{err}"
        );
        let err = apply(&mut t, "seeds.x=1").unwrap_err();
        assert!(err.contains("`seeds` is a value"), "{err}");
        assert!(apply(&mut t, "seeds").unwrap_err().contains("KEY=VALUE"));
    }
}

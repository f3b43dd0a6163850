//! `hull features`: the OCI features document, pretty JSON as runc prints
//! it, without the fields hull leaves unknown (runc omits them too).

use serde_json::Value;

use crate::{Failure, Outcome};

#[inline(never)]
pub fn features() -> Outcome {
    let mut doc = serde_json::to_value(libcontainer::features())
        .map_err(|e| Failure::new(format!("features: {e}")))?;
    drop_nulls(&mut doc);
    let json = serde_json::to_string_pretty(&doc).map_err(|e| Failure::new(e.to_string()))?;
    println!("{json}");
    Ok(0)
}

/// Removes every `null` member, at any depth.
fn drop_nulls(v: &mut Value) {
    if let Value::Object(map) = v {
        map.retain(|_, member| !member.is_null());
        map.values_mut().for_each(drop_nulls);
    }
}

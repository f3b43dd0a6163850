//! Dropping capabilities exactly as `process.capabilities` asks.
//!
//! Order matters: the bounding set is reduced first (it needs CAP_SETPCAP,
//! which may be dropped later), then — after the uid switch, with
//! PR_SET_KEEPCAPS holding the permitted set — inheritable, effective and
//! permitted are set, and ambient comes last since it needs the others.

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

/// A capability call that failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot set {set} capabilities: {source}")]
pub(crate) struct CapabilityError {
    set: &'static str,
    source: caps::errors::CapsError,
}

/// The capabilities this kernel knows (0 ..= /proc/sys/kernel/cap_last_cap),
/// read once per process instead of probing each with prctl.
fn supported() -> &'static CapsHashSet {
    static SUPPORTED: std::sync::OnceLock<CapsHashSet> = std::sync::OnceLock::new();
    SUPPORTED.get_or_init(|| {
        let last = crate::pseudo_file::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<u8>().ok());
        match last {
            Some(last) => caps::all()
                .into_iter()
                .filter(|c| c.index() <= last)
                .collect(),
            None => caps::runtime::thread_all_supported(),
        }
    })
}

fn convert(set: &Option<Capabilities>, supported: &CapsHashSet) -> CapsHashSet {
    set.iter()
        .flatten()
        .filter_map(|c| Capability::from_str(&format!("CAP_{c}")).ok())
        .filter(|c| supported.contains(c))
        .collect()
}

/// Removes from the bounding set every capability the config does not list.
pub(crate) fn drop_bounding(caps: &LinuxCapabilities) -> Result<(), CapabilityError> {
    let supported = supported();
    let keep = convert(caps.bounding(), supported);
    for &cap in supported {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|source| CapabilityError {
                set: "bounding",
                source,
            })?;
        }
    }
    Ok(())
}

/// Sets the inheritable, effective, permitted and ambient sets.
pub(crate) fn apply(caps: &LinuxCapabilities) -> Result<(), CapabilityError> {
    let supported = supported();
    let inheritable = convert(caps.inheritable(), supported);
    let permitted = convert(caps.permitted(), supported);
    for (set, name, wanted) in [
        (CapSet::Inheritable, "inheritable", &inheritable),
        (
            CapSet::Effective,
            "effective",
            &convert(caps.effective(), supported),
        ),
        (CapSet::Permitted, "permitted", &permitted),
    ] {
        caps::set(None, set, wanted).map_err(|source| CapabilityError { set: name, source })?;
    }
    if caps::runtime::ambient_set_supported().is_ok() {
        caps::clear(None, CapSet::Ambient).map_err(|source| CapabilityError {
            set: "ambient",
            source,
        })?;
        for cap in convert(caps.ambient(), supported) {
            // Like runc, an ambient capability the inheritable or permitted
            // set lacks is skipped: the kernel forbids it, and runc's default
            // spec asks for it. It is skipped before the call, whose failure
            // the caps crate would format into a message nobody reads.
            if !(inheritable.contains(&cap) && permitted.contains(&cap)) {
                tracing::debug!("ambient {cap} not raised: not inheritable and permitted");
                continue;
            }
            if let Err(e) = caps::raise(None, CapSet::Ambient, cap) {
                tracing::debug!("ambient {cap} not raised: {e}");
            }
        }
    }
    Ok(())
}

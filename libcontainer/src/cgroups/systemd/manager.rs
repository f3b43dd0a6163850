//! Calls to systemd's manager over the system bus: start a transient scope
//! around a pid, stop a unit, each waiting for its job to finish.

use std::time::Duration;

use crate::dbus::{Connection, DbusError, Message, Value};

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
/// How long one reply or signal may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A job that did not end in `done`.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Dbus(#[from] DbusError),
    #[error("systemd job {job} for {unit} finished with result {result:?}")]
    JobFailed {
        job: String,
        unit: String,
        result: String,
    },
}

/// Starts the transient scope `unit` in `slice` holding `pid` (as systemd
/// sees it), delegated to us, and waits until it is running.
pub fn start_scope(
    unit: &str,
    slice: &str,
    pid: u32,
    description: &str,
) -> Result<(), ManagerError> {
    let prop = |name: &str, v: Value| {
        Value::Struct(vec![Value::Str(name.into()), Value::Variant(Box::new(v))])
    };
    let props = vec![
        prop("Description", Value::Str(description.into())),
        prop("Slice", Value::Str(slice.into())),
        prop("Delegate", Value::Bool(true)),
        prop("PIDs", Value::Array("u".into(), vec![Value::U32(pid)])),
        prop("DefaultDependencies", Value::Bool(false)),
        // Unload the unit once it stops, failed or not: nothing lingers.
        prop("CollectMode", Value::Str("inactive-or-failed".into())),
    ];
    let body = vec![
        Value::Str(unit.into()),
        Value::Str("replace".into()),
        Value::Array("(sv)".into(), props),
        Value::Array("(sa(sv))".into(), vec![]),
    ];
    run_job(unit, "StartTransientUnit", body)
}

/// Stops `unit` and waits until it is gone; a unit that does not exist
/// (already stopped and unloaded) is not an error.
pub fn stop_unit(unit: &str) -> Result<(), ManagerError> {
    let body = vec![Value::Str(unit.into()), Value::Str("replace".into())];
    match run_job(unit, "StopUnit", body) {
        Err(ManagerError::Dbus(DbusError::Remote { name, .. })) if name == NO_SUCH_UNIT => Ok(()),
        other => other,
    }
}

/// Calls a manager method that queues a job for `unit` and waits for the
/// job's `JobRemoved` signal (subscribed to before the call, so it cannot
/// be missed); any result but `done` is an error.
fn run_job(unit: &str, method: &str, body: Vec<Value>) -> Result<(), ManagerError> {
    let mut conn = Connection::system(TIMEOUT)?;
    conn.add_match(&format!(
        "type='signal',sender='{SYSTEMD}',path='{MANAGER_PATH}',interface='{MANAGER}',member='JobRemoved'"
    ))?;
    let mut call = Message::call(SYSTEMD, MANAGER_PATH, MANAGER, method);
    call.body = body;
    let reply = conn.call(call)?;
    let job = reply
        .first_str()
        .ok_or(DbusError::Malformed("job path missing from the reply"))?
        .to_owned();
    loop {
        let signal = conn.next_signal()?;
        if signal.interface.as_deref() != Some(MANAGER)
            || signal.member.as_deref() != Some("JobRemoved")
        {
            continue;
        }
        // JobRemoved(u id, o job, s unit, s result)
        let field = |i: usize| signal.body.get(i).and_then(Value::as_str);
        if field(1) != Some(job.as_str()) {
            continue;
        }
        let result = field(3).unwrap_or_default();
        if result == "done" {
            return Ok(());
        }
        return Err(ManagerError::JobFailed {
            job,
            unit: unit.to_owned(),
            result: result.to_owned(),
        });
    }
}

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
/// sees it), delegated to us, with `extra` properties, and waits until it runs.
pub fn start_scope(
    unit: &str,
    slice: &str,
    pid: u32,
    description: &str,
    extra: Vec<(&str, Value)>,
) -> Result<(), ManagerError> {
    let mut props = vec![
        ("Description", Value::Str(description.into())),
        ("Slice", Value::Str(slice.into())),
        ("Delegate", Value::Bool(true)),
        ("PIDs", Value::Array("u".into(), vec![Value::U32(pid)])),
        ("DefaultDependencies", Value::Bool(false)),
        // Unload the unit once it stops, failed or not: nothing lingers.
        ("CollectMode", Value::Str("inactive-or-failed".into())),
    ];
    props.extend(extra);
    let body = vec![
        Value::Str(unit.into()),
        Value::Str("replace".into()),
        property_array(props),
        Value::Array("(sa(sv))".into(), vec![]),
    ];
    run_job(unit, "StartTransientUnit", body)
}

/// Changes properties of the running `unit` (until it stops).
pub fn set_properties(unit: &str, props: Vec<(&str, Value)>) -> Result<(), ManagerError> {
    let mut conn = Connection::system(TIMEOUT)?;
    let mut call = Message::call(SYSTEMD, MANAGER_PATH, MANAGER, "SetUnitProperties");
    call.body = vec![
        Value::Str(unit.into()),
        Value::Bool(true),
        property_array(props),
    ];
    conn.call(call)?;
    Ok(())
}

/// Properties as D-Bus `a(sv)`.
fn property_array(props: Vec<(&str, Value)>) -> Value {
    let items = props
        .into_iter()
        .map(|(name, v)| Value::Struct(vec![Value::Str(name.into()), Value::Variant(Box::new(v))]))
        .collect();
    Value::Array("(sv)".into(), items)
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

//! runc-style log lines: `time="…" level=error msg="…"` or JSON
//! `{"level","msg","time"}` (what containerd parses), to `--log` or stderr.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::cli::LogFormat;

/// Writes one log line per event.
struct LineWriter {
    out: Mutex<Box<dyn Write + Send>>,
    format: LogFormat,
    max: Level,
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

/// Formats one line, without the trailing newline.
pub fn format_line(format: LogFormat, level: &str, msg: &str) -> String {
    let now = libcontainer::rfc3339_nanos(std::time::SystemTime::now());
    let time = match now.find('.') {
        Some(dot) => format!("{}Z", &now[..dot]),
        None => now,
    };
    match format {
        LogFormat::Json => {
            serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string()
        }
        LogFormat::Text => format!(
            "time=\"{time}\" level={level} msg={}",
            serde_json::Value::String(msg.to_owned())
        ),
    }
}

// A subscriber of its own rather than tracing-subscriber's registry: hull
// makes no spans, only events, and the registry's span storage (a 32 KiB
// slab) and code were a tenth of a container start's peak RSS.
impl Subscriber for LineWriter {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    // Events above the level are skipped where they are made, unformatted.
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::from_level(self.max))
    }

    fn event(&self, event: &Event<'_>) {
        let level = *event.metadata().level();
        let mut msg = Message(String::new());
        event.record(&mut msg);
        let line = format_line(self.format, &level.as_str().to_ascii_lowercase(), &msg.0);
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
        }
    }

    // Spans (none are made) are accepted and not recorded.
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Installs the log writer; returns whether a log file is used.
pub fn init(file: Option<&Path>, format: LogFormat, debug: bool) -> std::io::Result<bool> {
    let out: Box<dyn Write + Send> = match file {
        Some(path) => Box::new(OpenOptions::new().create(true).append(true).open(path)?),
        None => Box::new(std::io::stderr()),
    };
    let writer = LineWriter {
        out: Mutex::new(out),
        format,
        max: if debug { Level::DEBUG } else { Level::WARN },
    };
    let _ = tracing::subscriber::set_global_default(writer);
    Ok(file.is_some())
}

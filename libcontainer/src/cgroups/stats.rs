//! Resource usage in runc's `events --stats` JSON shape.

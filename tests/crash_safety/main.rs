//! hull killed half-way: an engine kills its runtime when a timeout fires,
//! and the host may crash. Whatever the kill interrupts, no process is
//! left, `list` shows the container, and `delete --force` (or `network rm`)
//! removes everything hull made.

mod injected;
mod kit;
mod lost_state;
mod parallel;
mod soak;
mod timed;
mod torn;

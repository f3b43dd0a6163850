//! The CNI tests: hull-cni as a runtime's plugin (the smoke script over
//! every role, the dual-stack roles, the resolver it points containers at)
//! and hull's firewall beside the CNI reference plugins' rules.

mod coexist;
mod dual_stack;
mod resolver;
mod smoke;

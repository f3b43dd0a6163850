//! cgroups integration tests.

#[allow(unused_imports)]
use hull_tests::*;

//! create / start / run / state / kill / delete / list with runc's semantics.

use hull_tests::*;

#[test]
fn run_returns_the_exit_code_of_the_process() {
    let mut b = TestBundle::new("exit3");
    b.sh("exit 3");
    let (code, _, err) = b.run();
    assert_eq!(code, 3, "{err}");
    b.assert_no_state();
}

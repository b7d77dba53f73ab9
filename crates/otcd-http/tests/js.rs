//! The web faces' JavaScript unit tests (`tests/js/*.test.mjs`), run with `node --test`.
//!
//! Without Node.js the test prints `SKIPPED` and passes, unless `OTCD_REQUIRE_NODE=1` (set by `.ci/run`, which
//! installs Node.js when it is missing).

use std::process::Command;

#[test]
fn javascript_unit_tests_pass_under_node() {
    let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js");
    let output = match Command::new("node").arg("--test").arg(directory).output() {
        Ok(output) => output,
        Err(error) => {
            assert!(std::env::var("OTCD_REQUIRE_NODE").as_deref() != Ok("1"), "node is required: {error}");
            eprintln!("SKIPPED: node is not installed ({error})");
            return;
        }
    };
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "node --test failed:\n{report}");
    // A run that found no test files also exits 0: insist that tests ran.
    assert!(report.contains("# pass ") && !report.contains("# pass 0"), "no JavaScript tests ran:\n{report}");
}

//! Client programs in other languages that cluster tests run as child
//! processes: kafkajs scripts and Java main classes under `tests/compat`.
//! Cargo builds none of them; `tests/compat/failover/prepare.sh` installs
//! and compiles them (`scripts/test.sh` runs it before `cargo test`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The client-compatibility suites' directory.
pub const COMPAT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat");

/// Panics, naming the command that prepares it, if `path` is missing.
pub fn require(path: &Path) {
    assert!(
        path.exists(),
        "{} is missing: run tests/compat/failover/prepare.sh (npm ci in tests/compat; \
         mvn -q -B test-compile in tests/compat/java)",
        path.display()
    );
}

/// `java` running the compiled test class `class` (e.g.
/// `vltava.compat.failover.EosLoop`) on the Java suite's classpath.
pub fn java_main(class: &str) -> Command {
    let java = Path::new(COMPAT).join("java");
    let classes = java.join("target/test-classes");
    let classpath_file = java.join("target/classpath.txt");
    let class_file: PathBuf = classes.join(format!("{}.class", class.replace('.', "/")));
    require(&class_file);
    require(&classpath_file);
    let classpath = std::fs::read_to_string(&classpath_file).expect("read classpath.txt");
    let mut cmd = Command::new("java");
    cmd.args(["-Xmx256m", "-cp"])
        .arg(format!("{}:{}", classes.display(), classpath.trim()))
        .arg(class);
    cmd
}

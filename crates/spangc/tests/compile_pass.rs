//! The intended uses of the public API compile and run: every program
//! under `tests/pass/` is built and executed by trybuild (in verify mode,
//! most with a collection at every safepoint).

#[test]
fn compile_pass() {
    let t = trybuild::TestCases::new();
    t.pass("tests/pass/*.rs");
}

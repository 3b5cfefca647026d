//! The compile-time rules of the public API, proved with trybuild: every
//! program under `tests/ui/` must be rejected by the compiler, with the
//! error recorded next to it in the `.stderr` snapshot.
//!
//! Each file breaks one rule; its first comment says which and why.
//! `docs/api-compile-fail.md` lists them all with the error that rejects
//! each. Regenerate the snapshots with
//! `TRYBUILD=overwrite cargo test -p spangc --test compile_fail` and review
//! every changed `.stderr` by hand: the error must still be the intended
//! one (a borrow conflict at the safepoint line, a missing bound for mixed
//! brands, ...), not an unrelated one.

#[test]
fn compile_fail() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

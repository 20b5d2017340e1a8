//! Compile-error snapshots of the macros (trybuild): `tests/ui/fail/*.rs` must fail with
//! the `.stderr` beside each; `tests/ui/pass/*.rs` must compile.
//!
//! Update the snapshots with `TRYBUILD=overwrite cargo test --test ui`, then read every
//! caret: it must sit on the user's token.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}

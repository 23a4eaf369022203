//! Test support shared by the integration tests (and later the benchmarks): AWS clients pointed at
//! the local emulator, fakes of the parties we cannot run (Ashby and a vendor) that check what
//! they receive against the published contract, and a Lambda Runtime API emulator that runs the
//! compiled function binaries.
// Test code throughout (this crate is the tests' workspace member): a failed unwrap or expect
// is a failed test, and expect's message says which step failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod aws;
pub mod aws_proxy;
pub mod fakes;
pub mod lambda;
pub mod lifecycle;

//! Test support shared by the integration tests (and later the benchmarks): AWS clients pointed at
//! the local emulator, fakes of the parties we cannot run (Ashby and a vendor) that check what
//! they receive against the published contract, and a Lambda Runtime API emulator that runs the
//! compiled function binaries.
#![allow(clippy::unwrap_used)]

pub mod aws;
pub mod aws_proxy;
pub mod fakes;
pub mod lambda;
pub mod lifecycle;

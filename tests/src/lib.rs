//! Test support shared by the integration tests (and later the benchmarks): AWS clients pointed at
//! the local emulator, the Ashby OpenAPI validator, fakes of the parties we cannot run (Ashby and
//! a vendor), and a Lambda Runtime API emulator that runs the compiled function binaries.

pub mod aws;

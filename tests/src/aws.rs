//! AWS SDK clients pointed at the emulator the test command started (placeholder).

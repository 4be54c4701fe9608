//! The guest's `/init` (PID 1).
fn main() {}

//! airlock-applier (filled by its own issue).
fn main() {}

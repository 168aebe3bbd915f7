//! airlock-ledger (filled by its own issue).
fn main() {}

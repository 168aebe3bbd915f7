//! Operator output: the shared [`airlock_format::output::Output`], and the ledger
//! error's "what to do" line for it.

pub use airlock_format::output::{Hint, Output};

impl Hint for crate::Error {
    fn hint(&self) -> String {
        crate::Error::hint(self)
    }
}

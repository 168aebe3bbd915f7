//! Operator output: the shared [`airlock_format::output::Output`], and the ledger
//! error's "what to do" line for it.

pub use airlock_format::output::{OperatorError, Output};

impl OperatorError for crate::Error {
    fn hint(&self) -> String {
        crate::Error::hint(self)
    }
    fn exit(&self) -> airlock_format::Exit {
        crate::Error::exit(self)
    }
}

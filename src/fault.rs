//! Failures on our side — the database cannot be reached, stored key material
//! does not open, a worker died — as one type that every layer passes upward
//! with its cause attached (as `source`, never flattened into a string).
//!
//! The HTTP edge is the one place that turns a `Fault` into an answer (503
//! with `Retry-After`, or 500) and logs its whole cause chain, once
//! (`http::response`). Nothing below the edge logs a fault it returns.

use std::error::Error;

pub type Cause = Box<dyn Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Fault {
    /// Worth retrying shortly: the database does not answer, or the argon2
    /// queue is full. RFC 6749 §5.2 `temporarily_unavailable`.
    #[error("temporarily unavailable")]
    Unavailable(#[source] Cause),
    /// A bug or broken state. RFC 6749 §5.2 `server_error`.
    #[error("internal error")]
    Internal(#[source] Cause),
}

impl Fault {
    pub fn unavailable(cause: impl Into<Cause>) -> Self {
        Self::Unavailable(cause.into())
    }

    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// The RFC 6749 §5.2 error code a caller sees.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "temporarily_unavailable",
            Self::Internal(_) => "server_error",
        }
    }

    /// The description a caller sees: never the cause.
    pub fn description(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => {
                "the server is temporarily unable to handle the request; try again shortly"
            }
            Self::Internal(_) => "internal server error",
        }
    }
}

/// `error: cause: cause's cause…`, for the one log line at the edge.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_names_every_cause() {
        let fault = Fault::unavailable(Outer(std::io::Error::other("refused")));
        assert_eq!(chain(&fault), "temporarily unavailable: outer: refused");
        assert!(fault.is_unavailable());
    }
}

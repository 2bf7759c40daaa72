//! The OAuth 2.0 protocol: parsing requests, authenticating clients, deciding
//! grants, building tokens. It takes parsed input, a store and `now`, and
//! returns a result or an `OAuthError`; it imports neither axum nor sqlx.

pub mod assertion;
mod authenticate;
mod certificate_auth;
pub mod client_auth;
mod client_rows;
pub mod dpop;
mod error;
pub mod introspection;
pub mod metadata;
pub mod params;
mod service;
pub mod throttle;
pub mod token;

pub use assertion::{AssertionAuthenticator, AssertionSettings};
pub use authenticate::ClientAuthenticator;
pub use client_rows::ClientRows;
pub use error::OAuthError;
pub use service::TokenService;

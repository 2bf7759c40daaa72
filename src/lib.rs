//! tokenmint: an OAuth 2.0 authorization server for machine-to-machine
//! tokens — the client credentials grant (RFC 6749 §4.4) issuing RFC 9068
//! JWT access tokens.
//!
//! The crate is layered; each module says what it must not know:
//!
//! - [`domain`] — the client model, scopes and operator limits: the
//!   vocabulary every layer shares. Imports nothing from the crate.
//! - [`fault`] — failures on our side, carried upward with their cause.
//! - [`oauth`] — the protocol: request parsing, client authentication,
//!   grants, claims, the §5.2 error type. No axum, no sqlx.
//! - [`admin`] — client operations shared by the CLI and the admin API.
//! - [`crypto`] — secrets (argon2id), signing keys (aws-lc-rs), the
//!   key-encryption key. No HTTP, no SQL.
//! - [`keys`] — which signing key signs now; loads and creates them.
//! - [`key_fetch`] — fetches and caches the public keys of clients and
//!   trusted issuers (`jwks_uri`, OIDC discovery). No SQL.
//! - [`store`] — the storage trait and its PostgreSQL and SQLite
//!   implementations; the only module with SQL.
//! - [`http`] — router, layers, extractors, thin handlers, responses.
//! - [`config`] — layered settings validated into a typed `Config`.
//! - [`metrics`] — the Prometheus registry behind `/metrics`.
//! - [`startup`] — `Application::build` and `run_until_stopped`.
//! - [`cli`] — the command line; [`telemetry`] — logging; [`tls`] — the
//!   optional rustls listener; [`net`] — the connection cap and the
//!   open-file limit.

pub mod admin;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod fault;
pub mod http;
pub mod key_fetch;
pub mod keys;
pub mod metrics;
pub mod net;
pub mod oauth;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;

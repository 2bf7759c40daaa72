//! One integration-test binary: every test starts the real server on
//! 127.0.0.1:0 and speaks HTTP to it, once over an embedded SQLite file and
//! once over a fresh PostgreSQL database.

mod helpers;
mod jose;

mod admin;
mod audit;
mod authority;
mod cli;
mod connections;
mod credential_cache;
mod database_faults;
mod discovery;
mod dpop;
mod federation;
mod fuzz;
mod instances;
mod interop;
mod introspection;
mod keys;
mod logs;
mod mtls;
mod operations;
mod policy;
mod private_key_jwt;
mod provisioning;
mod secret_cost;
mod secret_rotation;
mod throttle;
mod tls;
mod token;
mod tracing;

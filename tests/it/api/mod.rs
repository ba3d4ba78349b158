//! The HTTP API against a real server on port 0 with the fixture
//! `gluon_seresnext50_32x4d` on the CPU: every input format, every error
//! status, the headers, metadata, probes, metrics, and `openapi.yaml`
//! against the routes actually served.
//!
//! Most tests share one server ([`shared_server`](crate::support::server::shared_server)); the few that need other
//! limits either put a second listener with another `ServerConfig` in front
//! of the shared engine, or start a server of their own.

mod client_errors;
mod metadata;
mod metrics;
mod predict_bodies;
mod server_states;
mod spec;

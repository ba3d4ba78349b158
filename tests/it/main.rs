//! The integration tests, one binary (each test binary links libtorch, which
//! is slow): every topic is a module, and `support` holds what they share.
//! Run one topic with `cargo test --test it -- <topic>::`.
//!
//! Most topics start the real server on 127.0.0.1, port 0, serving the
//! fixture `gluon_seresnext50_32x4d` (written by `make fixtures`) on the CPU.
//! They share this process: libtorch's intra-op thread count and the
//! decoder-panic counter are process-wide, so a test that needs either
//! changed runs the server binary in a process of its own.

mod support;

mod api;
mod bad_input;
mod classify_cli;
mod contract;
mod deploy_files;
mod devices;
mod embed;
mod embedding_parity;
mod failover;
mod fuzz_regression;
mod grpc;
mod hardening;
mod hub_cache;
mod kserve_sdk;
mod kserve_v2;
mod kserve_v2_http;
mod nginx_proxy;
mod onnx_cache;
mod onnx_parity;
mod onnx_serving;
mod own_model;
mod parity;
mod pixels;
mod prometheus_scrape;
mod python_client;
mod serving;
mod startup;
mod ui;
mod weights_formats;

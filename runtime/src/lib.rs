//! graphc-runtime: execution plans and the backends that run them.
//!
//! This crate knows nothing of the graph language or the IR: the compiler lowers a graph to a
//! [`Plan`], a list of [`Kernel`] calls over numbered buffers, and a backend runs it.

pub mod backend;
pub mod cpu;
pub mod cuda;
pub mod device;
pub mod exec;
pub mod fused;
pub mod ops;
pub mod plan;
pub mod rng;
mod schedule;

pub use plan::{BufId, Buffer, BufferRole, Kernel, MemoryPlan, Plan, Step};

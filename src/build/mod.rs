//! AST → IR: sub-networks applied, blobs resolved, layers lowered to primitive ops with shapes.

mod layers;
mod lower;
mod params;
mod resolve;

pub use lower::{build, BuildOptions};

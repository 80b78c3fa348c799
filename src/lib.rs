//! graphc: a compiler from Caffe-style graph files to an IR and execution plans.
//!
//! The pipeline, in order: [`syntax::parse`] (pest) → [`schema::parse_net`] (typed net) →
//! [`build::build`] (sub-networks applied, blobs resolved, layers lowered to IR ops with shapes).

pub mod error;
pub mod schema;
pub mod syntax;

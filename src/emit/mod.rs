//! Output formats of `graphc compile --emit`: `summary`, `yaml` and `dot` (`ir` is
//! [`crate::ir::print_graph`]).

mod dot;
mod summary;
mod yaml;

pub use dot::dot;
pub use summary::summary;
pub use yaml::yaml;

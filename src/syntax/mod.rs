//! The text syntax of graph files: protobuf text format, parsed by the pest grammar in
//! `grammar/graph.pest` into a schema-free tree of fields ([`Message`]).

mod parse;
mod tree;

pub use parse::parse;
pub use tree::{Field, Message, Value, ValueKind};

//! The intermediate representation: a petgraph graph of primitive ops with shapes on nodes.

mod graph;
mod op;
mod print;
mod shape;

pub use graph::{
    AddError, Blob, Graph, LayerRecord, LossTerm, Node, NodeId, Origin, ParamInfo, ParamKind, StateUpdate,
};
pub use op::{
    BinaryOp, ConvAttrs, Distribution, InputField, Op, PoolAttrs, PoolMethod, ReduceOp, UnaryOp, WarpAttrs, F32,
};
pub use print::print_graph;
pub use shape::{infer_shape, Shape};

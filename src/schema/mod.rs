//! The schema of graph files: Caffe's `NetParameter`/`LayerParameter` plus graphc's extensions,
//! read from the syntax tree with typed errors.

mod filler;
mod layer;
mod layer_kinds;
mod net;
mod reader;
mod solver;

pub use filler::{Filler, VarianceNorm};
pub use layer::{LayerDef, NetPhase, ParamSpec};
pub use layer_kinds::{
    layer_type_names, AffineFn, ConvParams, EltwiseOp, LayerKind, PoolMethod, PoolParams, ReductionOp,
};
pub use net::{parse_net, GenerateDef, NetDef, SubnetDef};
pub use solver::{Duration, LossRef, OptimizerDef, OptimizerKind, PhaseDef, SolverDef};

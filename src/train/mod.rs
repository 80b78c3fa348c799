//! Training: parameter initialization, data batches, checkpoints, sample grids and the loop.

pub mod batches;
pub mod checkpoint;
pub mod collapse;
pub mod grid;
pub mod init;
pub mod plot;
mod progress;
pub mod readback;
pub mod sample;
mod trainer;

pub use readback::LossReadback;
pub(crate) use trainer::{build_phase, held_out_losses};
pub use trainer::{run, RunOptions, RunSummary, TrainDevice, TrainError};

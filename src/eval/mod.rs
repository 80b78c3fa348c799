//! Measured quality of trained models (`graphc eval`) and the measures it rests on.

pub mod assign;
pub mod classifier;
pub mod frechet;
pub mod info;
mod run;
pub mod scores;

pub use run::{eval_run, CodeAccuracy, EvalOptions, EvalReport};

//! TODO
use crate::Compiled;
/// Graphviz drawing.
pub fn dot(_c: &Compiled) -> String { String::new() }

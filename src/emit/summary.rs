//! TODO
use crate::Compiled;
/// Summary table.
pub fn summary(_c: &Compiled) -> String { String::new() }

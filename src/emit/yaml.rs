//! TODO
use crate::{error::SourceFile, Compiled};
/// YAML dump.
pub fn yaml(_c: &Compiled, _s: &SourceFile) -> String { String::new() }

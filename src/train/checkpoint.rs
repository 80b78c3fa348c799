//! Checkpoints: every state value (parameters by their graph-file names, running statistics,
//! optimizer state) in one safetensors file, with the run's position in its metadata. Written
//! atomically: a temporary file in the same directory, synced, then renamed over the old one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use graphc_runtime::exec::State;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

/// Where a run stands, saved with its state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// Completed iterations.
    pub iteration: u64,
    /// Noise draws made so far.
    pub draw: u64,
    /// Completed passes over the training data.
    pub epoch: u64,
    /// Next position in the current epoch's data order.
    pub data_position: usize,
    /// The seed of the run.
    pub seed: u64,
}

/// A checkpoint that cannot be read or does not fit the graph.
#[derive(Debug)]
pub enum CheckpointError {
    /// Reading or writing failed.
    Io(PathBuf, std::io::Error),
    /// The file is not a valid checkpoint (truncated or corrupt).
    Corrupt(PathBuf, String),
    /// The checkpoint's values do not match the graph's.
    Mismatch(PathBuf, String),
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            CheckpointError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            CheckpointError::Corrupt(p, why) => write!(f, "{}: not a valid checkpoint ({why})", p.display()),
            CheckpointError::Mismatch(p, why) => write!(f, "{}: does not fit this graph: {why}", p.display()),
        }
    }
}

impl std::error::Error for CheckpointError {}

/// Writes `state` (values shaped by `shapes`) and `position` to `path`, atomically.
pub fn save(
    path: &Path,
    state: &State,
    shapes: &HashMap<String, Vec<usize>>,
    position: &Position,
) -> Result<(), CheckpointError> {
    let io = |e| CheckpointError::Io(path.to_path_buf(), e);
    let bytes: BTreeMap<&str, Vec<u8>> = state
        .values
        .iter()
        .map(|(name, values)| (name.as_str(), values.iter().flat_map(|v| v.to_le_bytes()).collect()))
        .collect();
    let mut views = Vec::with_capacity(bytes.len());
    for (name, data) in &bytes {
        let shape = shapes.get(*name).cloned().unwrap_or_else(|| vec![data.len() / 4]);
        let view = TensorView::new(Dtype::F32, shape, data)
            .map_err(|e| CheckpointError::Corrupt(path.to_path_buf(), e.to_string()))?;
        views.push((*name, view));
    }
    let metadata = HashMap::from([
        ("iteration".to_string(), position.iteration.to_string()),
        ("draw".to_string(), position.draw.to_string()),
        ("epoch".to_string(), position.epoch.to_string()),
        ("data_position".to_string(), position.data_position.to_string()),
        ("seed".to_string(), position.seed.to_string()),
    ]);
    let encoded = safetensors::serialize(views, Some(metadata))
        .map_err(|e| CheckpointError::Corrupt(path.to_path_buf(), e.to_string()))?;
    let temp = path.with_extension("safetensors.tmp");
    let mut file = std::fs::File::create(&temp).map_err(io)?;
    file.write_all(&encoded).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temp, path).map_err(io)
}

/// Reads a checkpoint: its state and position.
pub fn load(path: &Path) -> Result<(State, Position), CheckpointError> {
    let bytes = std::fs::read(path).map_err(|e| CheckpointError::Io(path.to_path_buf(), e))?;
    let corrupt = |why: String| CheckpointError::Corrupt(path.to_path_buf(), why);
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let field = |key: &str| -> Result<u64, CheckpointError> {
        meta.get(key).and_then(|v| v.parse().ok()).ok_or_else(|| corrupt(format!("metadata field `{key}` is missing")))
    };
    let position = Position {
        iteration: field("iteration")?,
        draw: field("draw")?,
        epoch: field("epoch")?,
        data_position: field("data_position")? as usize,
        seed: field("seed")?,
    };
    let mut state = State::default();
    for (name, view) in tensors.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(corrupt(format!("tensor \"{name}\" is {:?}, not F32", view.dtype())));
        }
        let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        state.values.insert(name, values);
    }
    Ok((state, position))
}

/// Checks that `loaded` has exactly the values `expected` names, with the same sizes.
pub fn check_fits(path: &Path, loaded: &State, expected: &HashMap<String, Vec<usize>>) -> Result<(), CheckpointError> {
    let mismatch = |why: String| CheckpointError::Mismatch(path.to_path_buf(), why);
    for (name, shape) in expected {
        let count: usize = shape.iter().product();
        match loaded.values.get(name) {
            None => return Err(mismatch(format!("it has no value \"{name}\""))),
            Some(v) if v.len() != count => {
                return Err(mismatch(format!("\"{name}\" has {} values, the graph needs {count}", v.len())))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = loaded.values.keys().find(|k| !expected.contains_key(*k)) {
        return Err(mismatch(format!("it has a value \"{extra}\" that the graph does not")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (State, HashMap<String, Vec<usize>>, Position) {
        let mut state = State::default();
        state.values.insert("fc.weight".into(), vec![1.0, -2.5, 3.25, 0.0, 5.0, 6.0]);
        state.values.insert("fc.bias".into(), vec![0.5, 0.25]);
        let shapes = HashMap::from([("fc.weight".to_string(), vec![2, 3]), ("fc.bias".to_string(), vec![2])]);
        (state, shapes, Position { iteration: 7, draw: 21, epoch: 1, data_position: 40, seed: 3 })
    }

    #[test]
    fn round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.safetensors");
        let (state, shapes, position) = sample();
        save(&path, &state, &shapes, &position).unwrap();
        let (loaded, loaded_position) = load(&path).unwrap();
        assert_eq!(loaded, state);
        assert_eq!(loaded_position, position);
        check_fits(&path, &loaded, &shapes).unwrap();
        assert!(!path.with_extension("safetensors.tmp").exists());
    }

    #[test]
    fn truncated_and_mismatched_checkpoints_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.safetensors");
        let (state, mut shapes, position) = sample();
        save(&path, &state, &shapes, &position).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("checkpoint.safetensors: not a valid checkpoint"), "{err}");
        shapes.insert("fc.weight".into(), vec![3, 3]);
        let err = check_fits(&path, &state, &shapes).unwrap_err().to_string();
        assert!(err.contains("\"fc.weight\" has 6 values, the graph needs 9"), "{err}");
    }
}

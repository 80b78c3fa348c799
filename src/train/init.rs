//! Initial values of parameters from their fillers (Caffe's semantics), drawn from the seeded RNG.
//! Each parameter draws from its own stream, keyed by a hash of its name, so adding a layer does
//! not change the initial values of the others.

use graphc_runtime::rng::Rng;

use crate::ir::ParamInfo;
use crate::schema::Filler;

/// A stable 64-bit hash of a name (FNV-1a).
pub fn name_stream(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The initial values of `param` under `seed`.
pub fn initial_values(param: &ParamInfo, seed: u64) -> Vec<f32> {
    let shape = &param.shape.0;
    let count = param.shape.numel();
    let mut rng = Rng::keyed(seed, name_stream(&param.name), 0);
    // Caffe's fans: count / shape[0] in, count / shape[1] out.
    let fan_in = shape.first().map_or(1, |d| count / d.max(&1));
    let fan_out = shape.get(1).map_or(1, |d| count / d.max(&1));
    match &param.filler {
        Filler::Constant { value } => vec![*value; count],
        Filler::Uniform { min, max } => (0..count).map(|_| rng.uniform_in(*min, *max)).collect(),
        Filler::Gaussian { mean, std, sparse } => {
            // Caffe's sparse Gaussian keeps each weight with probability sparse / num_output.
            let keep = sparse.map_or(1.0, |k| (k as f32 / shape.first().copied().unwrap_or(1) as f32).min(1.0));
            (0..count)
                .map(|_| {
                    let v = mean + std * rng.normal();
                    if keep < 1.0 && rng.uniform() >= keep {
                        0.0
                    } else {
                        v
                    }
                })
                .collect()
        }
        Filler::Xavier { norm } => {
            let limit = (3.0 / norm.fan(fan_in, fan_out)).sqrt();
            (0..count).map(|_| rng.uniform_in(-limit, limit)).collect()
        }
        Filler::Msra { norm } => {
            let std = (2.0 / norm.fan(fan_in, fan_out)).sqrt();
            (0..count).map(|_| std * rng.normal()).collect()
        }
        Filler::Categorical => {
            let classes = shape.last().copied().unwrap_or(1).max(1);
            let mut values = vec![0.0; count];
            for row in values.chunks_mut(classes) {
                row[rng.below(classes)] = 1.0;
            }
            values
        }
    }
}

/// Fills `state` with the initial value of each of `params` not already there, and with zeros
/// for every other state value the plans read (optimizer state).
pub fn fill_state<'a>(
    state: &mut graphc_runtime::exec::State,
    params: impl IntoIterator<Item = &'a ParamInfo>,
    plans: &[&graphc_runtime::Plan],
    seed: u64,
) {
    for p in params {
        state.values.entry(p.name.clone()).or_insert_with(|| initial_values(p, seed));
    }
    for buffer in plans.iter().flat_map(|p| &p.buffers) {
        if let graphc_runtime::BufferRole::State(name) = &buffer.role {
            state.values.entry(name.clone()).or_insert_with(|| vec![0.0; buffer.numel()]);
        }
    }
}

/// Deterministic stand-in data for a program's feeds (pixel and label patterns, step 1), for
/// benchmarks and tests where the values do not matter.
pub fn synthetic_feeds(plan: &graphc_runtime::Plan) -> std::collections::HashMap<&'static str, Vec<f32>> {
    let mut feeds = std::collections::HashMap::from([("step", vec![1.0])]);
    for buffer in &plan.buffers {
        match &buffer.role {
            graphc_runtime::BufferRole::Feed(name) if name == "image" => {
                feeds.insert("image", (0..buffer.numel()).map(|i| ((i * 37) % 256) as f32).collect());
            }
            graphc_runtime::BufferRole::Feed(name) if name == "label" => {
                feeds.insert("label", (0..buffer.numel()).map(|i| (i % 10) as f32).collect());
            }
            _ => {}
        }
    }
    feeds
}

//! Caffe's `FillerParameter`: how a parameter or a DummyData blob is filled.

use serde::Serialize;

use super::reader::Reader;
use crate::error::{Diagnostic, Result};
use crate::syntax::Message;

/// Which fan Xavier and MSRA fillers scale by (Caffe's `variance_norm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum VarianceNorm {
    /// Scale by the fan-in (Caffe's default).
    FanIn,
    /// Scale by the fan-out.
    FanOut,
    /// Scale by the mean of fan-in and fan-out (Glorot).
    Average,
}

/// A filler: a constant, or a distribution values are drawn from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Filler {
    /// Every value is `value`.
    Constant { value: f32 },
    /// Uniform on `[min, max]`.
    Uniform { min: f32, max: f32 },
    /// Normal with `mean` and `std`; with `sparse` = k, each value is kept with probability
    /// k / num_output and zeroed otherwise (Caffe's sparse Gaussian).
    Gaussian { mean: f32, std: f32, sparse: Option<usize> },
    /// Uniform on ±sqrt(3 / n), n the fan chosen by `norm`.
    Xavier { norm: VarianceNorm },
    /// Normal with std sqrt(2 / n), n the fan chosen by `norm`.
    Msra { norm: VarianceNorm },
    /// One-hot rows over the last axis, the class uniform (an extension for categorical codes).
    Categorical,
}

impl Filler {
    /// Whether the filler draws random values (so a DummyData top using it is a noise source).
    pub fn is_random(&self) -> bool {
        !matches!(self, Filler::Constant { .. })
    }

    /// A short text for listings, e.g. `gaussian(mean=0, std=0.02)`.
    pub fn describe(&self) -> String {
        match self {
            Filler::Constant { value } => format!("constant({value})"),
            Filler::Uniform { min, max } => format!("uniform({min}, {max})"),
            Filler::Gaussian { mean, std, sparse: None } => format!("gaussian(mean={mean}, std={std})"),
            Filler::Gaussian { mean, std, sparse: Some(k) } => {
                format!("gaussian(mean={mean}, std={std}, sparse={k})")
            }
            Filler::Xavier { norm } => format!("xavier({norm:?})"),
            Filler::Msra { norm } => format!("msra({norm:?})"),
            Filler::Categorical => "categorical".to_string(),
        }
    }
}

impl VarianceNorm {
    /// The fan used by Xavier and MSRA fillers for a blob with `fan_in` and `fan_out`.
    pub fn fan(self, fan_in: usize, fan_out: usize) -> f32 {
        match self {
            VarianceNorm::FanIn => fan_in as f32,
            VarianceNorm::FanOut => fan_out as f32,
            VarianceNorm::Average => (fan_in + fan_out) as f32 / 2.0,
        }
    }
}

const FILLER_TYPES: &[&str] = &["constant", "uniform", "gaussian", "xavier", "msra", "categorical"];

/// Parses a `*_filler { ... }` block. Caffe's default filler is `constant` 0.
pub fn parse_filler(msg: &Message, what: &str) -> Result<Filler> {
    let mut r = Reader::new(what, msg);
    let kind = match r.opt_str("type")? {
        Some(t) => match FILLER_TYPES.iter().find(|k| k.eq_ignore_ascii_case(&t.value)) {
            Some(k) => *k,
            None => {
                return Err(Diagnostic::new(
                    format!("unknown filler type \"{}\"", t.value),
                    t.span,
                    format!("expected one of {}", FILLER_TYPES.join(", ")),
                )
                .suggest(&t.value, FILLER_TYPES.iter().copied()))
            }
        },
        None => "constant",
    };
    let value = r.f32_or("value", 0.0)?;
    let min = r.f32_or("min", 0.0)?;
    let max = r.f32_or("max", 1.0)?;
    let mean = r.f32_or("mean", 0.0)?;
    let std = r.f32_or("std", 1.0)?;
    let sparse = r.opt_i64("sparse")?.and_then(|s| usize::try_from(s).ok()).filter(|s| *s > 0);
    let norm = match r.opt_enum("variance_norm", &["FAN_IN", "FAN_OUT", "AVERAGE"])? {
        Some(n) if n.value == "FAN_OUT" => VarianceNorm::FanOut,
        Some(n) if n.value == "AVERAGE" => VarianceNorm::Average,
        _ => VarianceNorm::FanIn,
    };
    r.finish()?;
    Ok(match kind {
        "constant" => Filler::Constant { value },
        "uniform" => Filler::Uniform { min, max },
        "gaussian" => Filler::Gaussian { mean, std, sparse },
        "xavier" => Filler::Xavier { norm },
        "msra" => Filler::Msra { norm },
        _ => Filler::Categorical,
    })
}

/// Parses an optional filler field of `r`, falling back to `default`.
pub fn filler_or(r: &mut Reader, key: &'static str, default: Filler) -> Result<Filler> {
    let what = format!("`{key}` of {}", r.what());
    match r.opt_msg(key)? {
        Some(m) => parse_filler(m, &what),
        None => Ok(default),
    }
}

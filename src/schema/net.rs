//! The file as a whole: Caffe's `NetParameter` plus the `subnet`, `solver` and `generate`
//! extensions.

use super::layer::{parse_layer, LayerDef};
use super::reader::Reader;
use super::solver::{parse_solver, SolverDef};
use crate::error::{Diagnostic, Result, Span, Spanned};
use crate::syntax::Message;

/// A reusable sub-network: layers with named inputs and outputs, applied by `Subnet` layers.
#[derive(Clone, Debug)]
pub struct SubnetDef {
    /// Its name, as `subnet_param.name` refers to it.
    pub name: Spanned<String>,
    /// Blob names bound to the applying layer's bottoms, in order.
    pub inputs: Vec<Spanned<String>>,
    /// Blob names returned as the applying layer's tops, in order.
    pub outputs: Vec<Spanned<String>>,
    /// Its layers.
    pub layers: Vec<LayerDef>,
    /// The block.
    pub span: Span,
}

/// The `generate` block: which blobs are the latent inputs and which is the generated image.
#[derive(Clone, Debug)]
pub struct GenerateDef {
    /// The image blob (N×C×H×W).
    pub image: Spanned<String>,
    /// Noise-source blobs that sampling draws or sets.
    pub latents: Vec<Spanned<String>>,
    /// The block.
    pub span: Span,
}

/// A whole graph file.
#[derive(Clone, Debug)]
pub struct NetDef {
    /// The net's name.
    pub name: Option<String>,
    /// Top-level layers in file order.
    pub layers: Vec<LayerDef>,
    /// Sub-network definitions.
    pub subnets: Vec<SubnetDef>,
    /// The training recipe, if any.
    pub solver: Option<SolverDef>,
    /// The generation block, if any.
    pub generate: Option<GenerateDef>,
}

impl NetDef {
    /// The sub-network called `name`.
    pub fn subnet(&self, name: &str) -> Option<&SubnetDef> {
        self.subnets.iter().find(|s| s.name.value == name)
    }
}

/// Reads the schema of a parsed file.
pub fn parse_net(file: &Message) -> Result<NetDef> {
    let mut r = Reader::new("the net", file);
    let name = r.opt_str("name")?.map(|s| s.value);
    let layers = r.msgs("layer")?.into_iter().map(parse_layer).collect::<Result<Vec<_>>>()?;
    let subnets = r.msgs("subnet")?.into_iter().map(parse_subnet).collect::<Result<Vec<_>>>()?;
    let solver = r.opt_msg("solver")?.map(parse_solver).transpose()?;
    let generate = r.opt_msg("generate")?.map(parse_generate).transpose()?;
    r.finish()?;
    check_unique_names(layers.iter().map(|l| &l.name), "layer")?;
    check_unique_names(subnets.iter().map(|s| &s.name), "subnet")?;
    Ok(NetDef { name, layers, subnets, solver, generate })
}

fn parse_subnet(msg: &Message) -> Result<SubnetDef> {
    let mut r = Reader::new("subnet", msg);
    let name = r.req_str("name")?;
    let inputs = r.strs("input")?;
    let outputs = r.strs("output")?;
    let layers = r.msgs("layer")?.into_iter().map(parse_layer).collect::<Result<Vec<_>>>()?;
    r.finish()?;
    if outputs.is_empty() {
        return Err(Diagnostic::new(
            format!("subnet \"{}\" has no `output`", name.value),
            name.span,
            "a sub-network must name at least one output blob",
        ));
    }
    check_unique_names(layers.iter().map(|l| &l.name), "layer")?;
    check_unique_names(inputs.iter(), "input")?;
    Ok(SubnetDef { name, inputs, outputs, layers, span: msg.span })
}

fn parse_generate(msg: &Message) -> Result<GenerateDef> {
    let mut r = Reader::new("`generate`", msg);
    let image = r.req_str("image")?;
    let latents = r.strs("latent")?;
    r.finish()?;
    Ok(GenerateDef { image, latents, span: msg.span })
}

fn check_unique_names<'a>(names: impl Iterator<Item = &'a Spanned<String>>, what: &str) -> Result<()> {
    let mut seen: Vec<&Spanned<String>> = Vec::new();
    for name in names {
        if let Some(first) = seen.iter().find(|s| s.value == name.value) {
            return Err(Diagnostic::new(
                format!("two {what}s are named \"{}\"", name.value),
                name.span,
                "second definition",
            )
            .note_at("first defined", first.span));
        }
        seen.push(name);
    }
    Ok(())
}

//! `--emit passes`: per solver phase, what each optimization pass did while the training
//! program was built (in the order they ran), with the node count after it and its time.

use super::table::{Align, Frame, Table};
use super::thousands;
use crate::autodiff::{training_program_logged, PassStage};
use crate::schema::NetPhase;
use crate::Compiled;

/// The table for every solver phase of `compiled`.
pub fn passes(compiled: &Compiled) -> String {
    if compiled.phases.is_empty() {
        return "the file has no solver phases: passes run on training programs\n".into();
    }
    let Ok(train) = crate::train::build_phase(compiled, NetPhase::Train) else {
        return "the TRAIN graph could not be rebuilt\n".into();
    };
    let mut out = String::new();
    for phase in &compiled.phases {
        let (program, log) = training_program_logged(&train, phase, &compiled.passes);
        let mut table = Table::new(&[
            ("stage", Align::Left),
            ("pass", Align::Left),
            ("changed", Align::Right),
            ("nodes after", Align::Right),
            ("time", Align::Right),
        ]);
        for (stage, record) in &log {
            let stage = match stage {
                PassStage::Forward => "forward graph",
                PassStage::Program => "training program",
            };
            table.row(vec![
                stage.into(),
                record.name.into(),
                thousands(record.changed as u64),
                thousands(record.nodes as u64),
                format!("{:.2} ms", record.time.as_secs_f64() * 1e3),
            ]);
        }
        out.push_str(&format!("phase \"{}\": {} nodes\n", phase.name, thousands(program.node_count() as u64)));
        table.render(&mut out, "  ", Frame::Header);
    }
    out
}

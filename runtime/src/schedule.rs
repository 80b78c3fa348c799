//! The order a backend runs a plan's steps in: the plan's, with runs of fused steps of one size
//! made groups that a backend evaluates together (chunk by chunk on the CPU, in one kernel on a
//! GPU), so that each member's output is still in cache, or in registers, when the next member
//! reads it. A group is formed only where the memory plan's shared storage cannot make this
//! differ from the plan's order.

use smallvec::SmallVec;

use crate::{BufId, BufferRole, Kernel, Plan};

/// What a backend runs next.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Unit {
    /// One step.
    Step(usize),
    /// Fused steps of one size, evaluated chunk by chunk together (in this order), and for each
    /// whether only later members read its output, which is then kept per chunk
    /// ([`crate::cpu::fused::GroupOutput::Chunk`]).
    Group(SmallVec<[usize; 8]>, SmallVec<[bool; 8]>),
}

/// Fused steps grouped at most (the outputs a group task holds at once).
pub(crate) const MAX_GROUP: usize = 8;
/// The fewest elements a grouped step has on the CPU: below this, the memory traffic a group
/// saves is not worth its bookkeeping. On a GPU, where a group also saves launches, every size
/// is grouped.
pub(crate) const CPU_GROUP_MIN: usize = 4096;
/// The most elements a step moved ahead of a group has (the scalar factors of Adam's update).
const HOIST_MAX: usize = 64;

/// The plan's steps in order, with runs of fused steps of one size (at least `group_min`
/// elements) made groups: a step of at most [`HOIST_MAX`] elements in between that reads no
/// group output moves ahead of the group. A group (shortened from its end while it must be) is
/// kept only when running it together cannot change a value, given how the memory plan shares
/// storage: every member writes storage of its own that no member reads as another buffer, and
/// no moved step writes storage a member reads or writes.
pub(crate) fn schedule(plan: &Plan, home: &[usize], group_min: usize) -> Vec<Unit> {
    let numel = |s: usize| plan.buffers[plan.steps[s].output.0 as usize].numel();
    let fused = |s: usize| matches!(plan.steps[s].kernel, Kernel::Fused(_)) && is_temp(plan, plan.steps[s].output);
    let mut units = Vec::new();
    let mut i = 0;
    while i < plan.steps.len() {
        let mut group: SmallVec<[usize; 8]> = SmallVec::new();
        let mut moved: Vec<usize> = Vec::new();
        if fused(i) && numel(i) >= group_min {
            group.push(i);
            for j in i + 1..plan.steps.len() {
                let reads_group =
                    plan.steps[j].inputs.iter().any(|b| group.iter().any(|&g| plan.steps[g].output == *b));
                if fused(j) && numel(j) == numel(i) && group.len() < MAX_GROUP {
                    group.push(j);
                } else if numel(j) <= HOIST_MAX && !reads_group {
                    moved.push(j);
                } else {
                    break;
                }
            }
            moved.retain(|&m| m < *group.last().expect("the group has a member"));
            // Where the whole run cannot be a group, a shorter one may be.
            while group.len() > 2 && !group_is_safe(plan, home, &group, &moved) {
                group.pop();
                moved.retain(|&m| m < *group.last().expect("the group has a member"));
            }
        }
        if group.len() >= 2 && group_is_safe(plan, home, &group, &moved) {
            i = group.last().expect("the group has a member") + 1;
            units.extend(moved.into_iter().map(Unit::Step));
            let chunk_only = group.iter().map(|&g| read_only_within(plan, &group, plan.steps[g].output)).collect();
            units.push(Unit::Group(group, chunk_only));
        } else {
            units.push(Unit::Step(i));
            i += 1;
        }
    }
    units
}

/// Whether `buffer`, the output of a member of `group`, is read by the group's members only: by no
/// other step, no write-back and not by the caller (an output of the plan).
fn read_only_within(plan: &Plan, group: &[usize], buffer: BufId) -> bool {
    let mut outside = plan.steps.iter().enumerate().filter(|(s, _)| !group.contains(s));
    outside.all(|(_, step)| !step.inputs.contains(&buffer))
        && plan.writebacks.iter().all(|(source, _)| *source != buffer)
        && plan.outputs.iter().all(|(_, output)| *output != buffer)
}

/// Whether running `moved`, then `group` chunk by chunk, computes what the plan's order does.
fn group_is_safe(plan: &Plan, home: &[usize], group: &[usize], moved: &[usize]) -> bool {
    let slot = |b: BufId| is_temp(plan, b).then(|| home[b.0 as usize]);
    let outputs: Vec<BufId> = group.iter().map(|&g| plan.steps[g].output).collect();
    let out_slots: Vec<usize> = outputs.iter().filter_map(|&b| slot(b)).collect();
    let distinct =
        out_slots.len() == outputs.len() && (1..out_slots.len()).all(|i| !out_slots[..i].contains(&out_slots[i]));
    let member_inputs =
        || group.iter().flat_map(|&g| plan.steps[g].inputs.iter().copied()).filter(|b| !outputs.contains(b));
    let inputs_apart = member_inputs().all(|b| slot(b).is_none_or(|s| !out_slots.contains(&s)));
    let moved_apart = moved.iter().all(|&m| {
        let out = plan.steps[m].output;
        slot(out).is_none_or(|s| !out_slots.contains(&s) && member_inputs().all(|b| b == out || slot(b) != Some(s)))
    });
    distinct && inputs_apart && moved_apart
}

/// Whether buffer `id` is a temporary of the plan.
pub(crate) fn is_temp(plan: &Plan, id: BufId) -> bool {
    plan.buffers[id.0 as usize].role == BufferRole::Temp
}

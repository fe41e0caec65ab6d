"""Deep ensemble: M text classifiers from different random initialisations, softmax averaged.

Lakshminarayanan, Pritzel & Blundell (2017); Uncertainty Baselines' CLINC "Ensemble (Size=10)"
(here 4 members by default, as the image ensemble, for a CPU). Each member has its own initialisation and data order
and is trained one after another; mutual information between the members is an OOD score.

    uqbench run text/ensemble --dataset=clinc150 --data_dir=../shared/data --num_members=4
"""

from __future__ import annotations

from uqbench.baselines import run_as_script
from uqbench.training import flags as common
from uqbench.training import text_predictors, text_task

FLAGS_USED = (*common.TEXT_FLAGS, common.NUM_MEMBERS)
NUM_MEMBERS = 4


def run() -> dict:
    """Train the members one after another and evaluate their average; returns the summary."""
    count = common.value_or(common.NUM_MEMBERS, NUM_MEMBERS)
    if count < 2:
        raise ValueError(f"--num_members must be at least 2, got {count}")
    task = text_task.prepare_text_task("text/ensemble")
    members, history, train_seconds = [], [], 0.0
    for i in range(count):
        member = task.build_model(seed_offset=i)
        records, seconds = task.train(member, seed_offset=i, label=f" member {i + 1}/{count}")
        members.append(member)
        history.extend({"member": i, **record} for record in records)
        train_seconds += seconds

    return text_task.finish_run(
        task,
        text_predictors.ensemble(members, task.runtime, task.data.pad_id),
        flag_lines=common.serialize(FLAGS_USED),
        history=history,
        train_seconds=train_seconds,
        params=sum(text_task.count_parameters(m) for m in members),
        checkpoint=task.checkpoint(members),
        extra={"num_members": count},
    )


if __name__ == "__main__":
    run_as_script(run)

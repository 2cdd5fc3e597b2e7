"""Progress stages: a stage opened without a total gets one from the users scored inside it; outside a
terminal each stage writes one line when it ends."""

from __future__ import annotations

import io

import numpy as np
import torch

from redteam.evaluation import ranking_values
from redteam.progress import Reporter, unsized_stage


def scorer(histories):
    scores = torch.zeros(len(histories), 11)
    scores[:, 1:] = torch.arange(10, 0, -1, dtype=torch.float32)
    return scores


def test_evaluation_reports_users_scored_to_an_unsized_stage() -> None:
    from rich.console import Console

    reporter = Reporter(Console(file=io.StringIO(), width=150, force_terminal=True), enabled=True)
    histories = [np.array([1, 2])] * 1100
    with reporter.session():
        with reporter.stage("evaluate") as stage:
            values = ranking_values(scorer, histories, np.full(1100, 3), ks=[10])
            task = reporter._progress.tasks[0]
            assert (task.total, task.completed) == (1100, 1100)  # 3 batches of <= 512 users
            assert task.fields["status"] == "1,100 of 1,100 users scored"
            assert unsized_stage() is stage
        with reporter.stage("train", total=5) as stage:  # counts its own units: left alone
            stage.update(completed=2)
            ranking_values(scorer, histories[:10], np.full(10, 3), ks=[10])
            task = reporter._progress.tasks[1]
            assert (task.total, task.completed) == (5, 2)
    assert values["hr@10"].shape == (1100,) and unsized_stage().sized is False
    # Outside any stage (or with progress off) nothing is reported and nothing breaks.
    assert ranking_values(scorer, histories[:3], np.full(3, 3), ks=[10])["hr@10"].tolist() == [1.0, 1.0, 1.0]
    quiet = Reporter(None, enabled=False)
    with quiet.session(), quiet.stage("evaluate"):
        ranking_values(scorer, histories[:3], np.full(3, 3), ks=[10])


def test_outside_a_terminal_each_stage_writes_one_line_when_it_ends() -> None:
    from rich.console import Console

    out = io.StringIO()
    reporter = Reporter(Console(file=out, width=150), enabled=True)  # a file: not a terminal
    histories = [np.array([1, 2])] * 600
    with reporter.session():
        with reporter.stage("train sasrec (seed 0)", total=3) as stage:
            for epoch in range(3):
                assert out.getvalue() == ""  # nothing while the stage runs
                stage.advance(status=f"epoch {epoch + 1}")
        with reporter.stage("evaluate sasrec"):
            ranking_values(scorer, histories, np.full(600, 3), ks=[10])
        with reporter.stage("load data") as stage:
            stage.update(status="22363 users")
        with reporter.stage("train gru4rec (seed 0)", total=200) as stage:
            stage.update(status="loaded from cache")
    lines = [" ".join(line.split()[2:]) for line in out.getvalue().splitlines()]
    assert lines == ["train sasrec (seed 0) 3/3 epoch 3", "evaluate sasrec 600/600 600 of 600 users scored",
                     "load data 22363 users", "train gru4rec (seed 0) loaded from cache"]
    assert all(line.split()[1] == "s" and line.split()[0].isdigit() for line in out.getvalue().splitlines())

"""bench/ray_schedule.py: critical path and list schedule of a unit graph, checked by hand."""

import importlib.util
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("ray_schedule", Path(__file__).parents[1] / "bench" / "ray_schedule.py")
ray_schedule = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(ray_schedule)

# victim 10 s -> attack A 5 s -> defenses D1 3 s, D2 4 s; victim -> attack B 6 s
SECONDS = {"victim": 10.0, "A": 5.0, "B": 6.0, "D1": 3.0, "D2": 4.0}
NEEDS = {"victim": (), "A": ("victim",), "B": ("victim",), "D1": ("victim", "A"), "D2": ("victim", "A")}
ONE_CPU = dict.fromkeys(SECONDS, 1)


def test_bottom_levels_are_the_longest_chains_to_the_end():
    assert ray_schedule.bottom_levels(SECONDS, NEEDS) == {"victim": 19.0, "A": 9.0, "B": 6.0, "D1": 3.0, "D2": 4.0}


@pytest.mark.parametrize(("workers", "wall"), [(1, 28.0), (2, 19.0), (64, 19.0)])
def test_list_schedule_wall_by_hand(workers, wall):
    # 2 workers: victim 0-10; A 10-15 and B 10-16; D2 (longer chain) 15-19; D1 16-19
    assert ray_schedule.list_schedule(SECONDS, NEEDS, ONE_CPU, workers) == wall


def test_a_unit_wider_than_the_free_workers_waits():
    cpus = {**ONE_CPU, "B": 2}
    # 2 workers: at 10 A starts and B (2 CPUs) is held with one worker free; at 15 B has the longest
    # chain of the ready units and takes both workers, 15-21; then D2 21-25 and D1 21-24
    assert ray_schedule.list_schedule(SECONDS, NEEDS, cpus, 2) == 25.0

"""Where a recommender scenario's work runs: in this process (serial, the default) or as Ray tasks.

The serial executor is the runner's own loop (:func:`redteam.runner.run_scenario`). The Ray
executor cuts the same loop into units (:mod:`redteam.executors.units`): one per trained victim,
and one per (victim, attacker seed, group of attacks linked by a surrogate dependency). Each unit
runs in a worker against the shared cache (:mod:`redteam.executors.unit_run`) and records what
each of its steps added to the result rows; the driver replays those records in the serial loop's
order (:mod:`redteam.executors.merge`), so the rows come out as a serial run writes them.
"""

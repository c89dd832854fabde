"""Running scenarios: preflight checks that build one plan, the experiment that runs it against its
no-attack baseline, jobs and executors, and sweeps over grids of scenarios."""

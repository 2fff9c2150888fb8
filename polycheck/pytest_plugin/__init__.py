"""The pytest glue of polycheck: options, the run's resolution, the parameters of the checks, their verdicts,
the rollback hooks and what goes into the reports. Everything else in `polycheck` is plain library code."""

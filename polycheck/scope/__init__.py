"""What one run and one check own: the frozen run, a check's scope, the sweeper of synthetic data."""

"""Demo scenarios (data files) and their loader, and the bulk generator used by benchmarks."""

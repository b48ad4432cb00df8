"""trio-rest's benchmarks: pure protocol throughput and end-to-end servers, side by side."""

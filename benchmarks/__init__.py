"""bragserve benchmarks: each prints a table and writes JSON + PNG under benchmarks/results/."""

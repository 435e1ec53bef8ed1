"""bench's Hydra launcher plugin (bench_slurm.py)."""

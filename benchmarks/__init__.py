"""convstore's benchmarks: each workload measured against a lower bound in the same run.

Run ``python -m benchmarks`` from the repository root.
"""

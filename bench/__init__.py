"""guildkit benchmarks: `python -m bench` (full, a few minutes) or `python -m bench --smoke`.

Each section measures a part of the settings layer next to its peers in the same run (the raw
limits and the naive seed design in `bench.naive`) and reports ratios, because this machine is
shared and noisy and absolute numbers drift between runs.
"""

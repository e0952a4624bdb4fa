"""Generation: the settings table, requests and completions, the `Generator` and
`Scorer` interfaces, samplers, the in-graph generation loop, and `backends/`.
"""

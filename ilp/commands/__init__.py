"""The `ilp` command's groups, one module each; `ilp.cli` is only the entry point that dispatches to them.

- `stages`: each stage run alone (ingest, transform, validate, analyse), for data engineers and debugging;
- `operations`: the consortium's scheduled job and what shows its state (run, profile, status, query, dictionary);
- `consortium`: what crosses between a centre and the hub (keys, package, serve, pool);
- `demo`: the built-in synthetic consortium (synth, demo).
"""

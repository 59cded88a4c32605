"""tau-emotion: τ-bench customer-service agents against emotional simulated users.

Map of the package (one job per module):

- `__main__` composes the Hydra config (`conf/`) and calls `app.run`; `app` validates the config
  (pydantic, `errors.validated`) and instantiates the parts of one job; `runner` runs the job's
  (task, trial) conversations concurrently and writes its files through `store`; `conversation`
  is one τ-bench episode; `user` is the simulated user's prompt and turns; `metrics` computes
  reward and pass^k; `record` defines the conversation record every reader uses.
- Environments: `domain.Domain` wraps any τ-bench-shaped domain (tools, data, tasks, wiki) and
  scores it; `taubench` loads τ-bench's retail and airline. A new environment is a loader
  function returning a `Domain` plus a `conf/env/<name>.yaml` whose `domain._target_` names it.
- Variants: `variants.Variant` is the schema of `conf/variant/*.yaml`; a new variant is one YAML
  file there (it joins every ready sweep by itself), the framing around it is `conf/user/llm.yaml`.
- Backends: `backends.base` holds the two small interfaces (`Backend`, `ChatModel`); a new backend
  is a module in `backends/` plus `conf/backend/<name>.yaml` with its `_target_`; model presets
  are `conf/model/*.yaml`, read through `presets.ModelPreset`. Optional dependencies are imported
  where used and asked for through `extras.require`.
- Sweeps: `sweeps/*.yaml` (`+sweep=<file>`) are ready Hydra multiruns; `sweep_callback` and
  `sweep` keep `manifest.json`; `hydra/launcher` presets run jobs locally or on SLURM.
- Outputs downstream: `tracking/` mirrors a job to W&B, `sync_wandb` uploads offline runs,
  `report/` turns a sweep directory into tables, figures and a report.
- Plain helpers: `types` (messages, sampling, terminations), `seeds`, `cow` and `datahash` (fast
  copy-on-write databases with τ-bench's hash), `observers`, `errors` (error types, exit codes).
"""

from harness.variants import register_config_resolvers

__version__ = "0.1.0"

register_config_resolvers()

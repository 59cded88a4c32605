"""tau-emotion: τ-bench customer-service agents against emotional simulated users.

Map of the package (one job per module):

- `__main__` checks the command line (`guards`), composes the Hydra config (`conf/`) and calls
  `app.run`; `app` validates the config (pydantic, `errors.validated`) and instantiates the parts of
  one job; `runner` runs the job's (task, trial) conversations concurrently and writes its files
  through `store`; `retry` redoes infrastructure failures in passes and decides the job's final
  state; `conversation` is one episode; `user` is the simulated user's prompt and turns; `metrics`
  computes reward and pass^k; `record` defines the conversation record every reader uses; `cost`
  prices it.
- Environments: `domains.base.Domain` is the protocol the loop, oracle and report speak to;
  `domains/taubench` (τ-bench retail and airline, with its copy-on-write and hash machinery) and
  `domains/tau2` (τ²-bench retail, airline, telecom) implement it. A new environment is a folder
  there plus a `conf/env/<name>.yaml` whose `domain._target_` names its loader.
- Variants: `variants.Variant` is the schema of `conf/variant/*.yaml`; a new variant is one YAML
  file there (it joins every ready sweep by itself), the framing around it is `conf/user/llm.yaml`.
- Backends: `backends.base` holds the two small interfaces (`Backend`, `ChatModel`); a new backend
  is a module in `backends/` plus `conf/backend/<name>.yaml` with its `_target_`; model presets
  are `conf/model/*.yaml`, read through `presets.ModelPreset`. Optional dependencies are imported
  where used and asked for through `extras.require`.
- Sweeps: `sweeps/*.yaml` (`+sweep=<file>`) are ready Hydra multiruns; `sweep_callback` and
  `sweep` keep `manifest.json`; `launchers` (registered in `hydra_plugins/tau_emotion`) give each
  job its own resources, `slurm_launcher` refuses requests SLURM cannot meet and reports why jobs
  wait, `requeue` puts an incomplete job or one whose engine died back in the SLURM queue.
- Per conversation, from its record: `analysis.anatomy` (failure anatomy: missing, wrong and extra
  writes, concessions, unconfirmed writes, ... against the ground truth, with the env's tool roles
  from `domains.roles`), `analysis.behaviour` (effort, words, lexicon apologies and refusals,
  giving in), `analysis.measures` (both as flat columns, for the report, viewer and W&B).
- Downstream of a sweep directory: `judge/` rates every simulated user (`python -m harness.judge`),
  `report/` turns it into tables, figures and a report, `view/` into an HTML viewer, `tracking/`
  mirrors jobs to W&B and `sync_wandb` uploads offline runs and builds the dashboards.
- Plain helpers: `types` (messages, sampling, terminations), `seeds`, `observers`, `logs` (quiet
  third-party loggers), `errors` (error types, exit codes).
"""

from harness.episode.variants import register_config_resolvers

__version__ = "0.1.0"

register_config_resolvers()

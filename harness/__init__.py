"""tau-emotion: τ-bench customer-service agents against emotional simulated users.

Map of the package, by layer, from one conversation up to a sweep:

- `episode/`: one conversation. `types` (messages, sampling, terminations), `record` (the
  `EpisodeRecord` `run_conversation` returns and the `ConversationRecord` every reader takes),
  `conversation` (the loop, `run_conversation`), `user`
  (the simulated user: the environment's prompt plus the variant's block), `variants`
  (`conf/variant/*.yaml`; a new variant is one YAML file), `seeds`.
- `domains/`: `base.Domain`, the protocol the loop, oracle and report speak to; `roles` (each
  domain's tools that write, need a yes, concede, identify or transfer: the one table); `taubench/`
  (τ-bench retail and airline: copy-on-write data, hashes, its oracle, its user prompt, its `results.json`)
  and `tau2/` (τ²-bench retail, airline, telecom: its oracle, its `tau2_results.json`). A new
  environment is a folder there plus a `conf/env/<name>.yaml` whose `domain._target_` names its loader.
- `backends/`: `base` (`Backend`, `ChatModel`, `BackendContext`), `vllm`, `openai_compat`, `scripted`,
  `oracle` (asks the conversation's domain for its players: no backend imports a domain),
  `presets` (`conf/model/*.yaml`); a new backend is a module plus `conf/backend/<name>.yaml`.
  `hosted`: `RemoteBackend` (client, concurrency, first-request refusals) under `openai_compat` and
  the hosted provider APIs, which share `HostedBackend` (retries) with one adapter each:
  `anthropic_messages`, `gemini`, `openai_responses`.
- `store/`: the job directory, the contract between running and reading: `layout` (`JobDir`,
  `SweepDir`: every file name, the job's lock), `files` (whole JSON files), `jsonl` (the one
  append log and tolerant reader, one damage policy), `conversations` and `judgments` (the two
  logs), `models` (`job.json`, `summary.json`), `progress` (`job_progress`, the one `job_state()`).
- `job/`: one job. `app` validates the config (pydantic, `errors.validated`) and builds the job,
  `runner` runs its conversations concurrently and writes through `store`, `retry` redoes
  infrastructure failures in passes, `metrics` (reward, pass^k, words per turn), `cost`,
  `guards` (credentials and path names refused before anything is written), `observers`.
- `cluster/`: `launchers` (registered in `hydra_plugins/tau_emotion`) give each job its own
  resources, `slurm_launcher` refuses requests SLURM cannot meet and reports why jobs wait,
  `manifest` and `sweep_callback` keep `manifest.json` (`python -m harness.sweep`), `requeue`.
- `analysis/`: per conversation, from its record: `anatomy` (failure anatomy: missing, wrong and
  extra writes, concessions, unconfirmed writes, ... against the ground truth, with the env's tool
  roles from `domains.roles`), `behaviour` (effort, words, lexicon apologies and refusals, the
  judge's reading of them, giving in), `measures` (both as flat columns, for the report, viewer and
  W&B).
- Downstream of a sweep directory, reading it only through `store/`: `judge/` rates every
  simulated user turn and agent message (`python -m harness.judge`; `judge.sample` and `judge.agree` are the human
  validation loop), `report/` makes tables, figures and a report (`contrasts.Comparisons` is
  what every paired table reads; `agent_acts` joins the judge's reading of the agent's messages),
  `view/` an HTML viewer, `tracking/` mirrors jobs to W&B (`python -m harness.sync_wandb`).
- Commands and plain helpers: `__main__` (`python -m harness` and the `tau-emotion` script: the
  command-line guard, then Hydra on `conf_dir.CONF_DIR`), `errors` (error types, exit codes),
  `credentials` (what a key looks like), `extras` (optional dependencies), `logs`.
"""

from harness.episode.variants import register_config_resolvers

__version__ = "0.1.0"

register_config_resolvers()

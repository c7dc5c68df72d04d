#!/usr/bin/env bash
# A Python venv holding one of the PyTorch builds the compatibility checks run against
# (README, "Building against your LibTorch"), made from the machine's local wheel mirror only, and kept between runs.
#
#   scripts/compat-venv.sh cpu2.13    torch 2.13.0+cpu, numpy, safetensors
#   scripts/compat-venv.sh cuda2.14   torch 2.14.1 (CUDA 13, with its nvidia-* wheels), torchvision 0.29.1,
#                                     timm 1.0.29, numpy, safetensors
#
# torch 2.14.1 also asks for cuda-bindings and triton, which the mirror lacks and LibTorch does not use (they
# serve torch.cuda's Python bindings and torch.compile): torch, torchvision and timm are installed without
# their dependencies, and those they do use are named.
#
# Prints the venv's python on stdout. The venvs live in $VBP_COMPAT_CACHE (default
# ~/.cache/torch-vbp/compat); one that is complete (a .complete stamp holding its requirement list) is reused
# as it is. pip reads the mirror from its own configuration (pip.conf: find-links and a file:// index on
# these machines); VBP_PIP_ARGS adds to it, e.g. VBP_PIP_ARGS="--no-index --find-links /my/wheels".
# Nothing is downloaded from anywhere else: PyPI itself is never asked (--index-url is the first file://
# index pip is configured with, or none).
set -euo pipefail
flavour=${1:?usage: compat-venv.sh cpu2.13|cuda2.14|--check}
# The mirror as pip is configured for it, without PyPI: the file:// indexes become the only indexes.
mirror_args=()
indexes=$("${VBP_COMPAT_PYTHON:-python3}" -m pip config list 2>/dev/null | sed -n "s/^global\.extra-index-url='\(.*\)'$/\1/p" | tr ' ' '\n' | grep '^file:' || true)
first=1
for index in $indexes; do
  if [ $first = 1 ]; then mirror_args+=(--index-url "$index"); first=0; else mirror_args+=(--extra-index-url "$index"); fi
done
if [ $first = 1 ]; then mirror_args+=(--no-index); fi
# --check: whether the mirror has both torch builds (answers quickly, installs nothing).
if [ "$flavour" = --check ]; then
  for wheel in "torch==2.13.0+cpu" "torch==2.14.1"; do
    "${VBP_COMPAT_PYTHON:-python3}" -m pip install -q --disable-pip-version-check --dry-run --no-deps --ignore-installed \
      "${mirror_args[@]}" "$wheel" 2>/dev/null >/dev/null || { echo "compat-venv: the mirror has no $wheel" >&2; exit 1; }
  done
  exit 0
fi

no_deps=()
case "$flavour" in
  cpu2.13) requirements=("torch==2.13.0+cpu" numpy safetensors) ;;
  cuda2.14)
    no_deps=("torch==2.14.1" "torchvision==0.29.1" "timm==1.0.29")
    requirements=(filelock "typing-extensions>=4.10.0" "setuptools>=77.0.3" "sympy>=1.13.3" "networkx>=2.5.1" jinja2
      "fsspec>=0.8.5" "cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.3"
      "nvidia-cudnn-cu13==9.24.0.43" "nvidia-cusparselt-cu13==0.8.1" "nvidia-nccl-cu13==2.30.7"
      "nvidia-nvshmem-cu13==3.4.5" pillow pyyaml huggingface_hub numpy safetensors) ;;
  *) echo "compat-venv.sh: unknown flavour '$flavour' (expected cpu2.13 or cuda2.14)" >&2; exit 2 ;;
esac
cache=${VBP_COMPAT_CACHE:-$HOME/.cache/torch-vbp/compat}
venv="$cache/$flavour"
stamp="$venv/.complete"
wanted="${no_deps[*]} ${requirements[*]}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "$venv/bin/python"
  exit 0
fi

base_python=${VBP_COMPAT_PYTHON:-python3}
rm -rf "$venv"
mkdir -p "$cache"
echo "compat-venv: making $venv ($wanted) from the local wheel mirror" >&2
"$base_python" -m venv "$venv" >&2

# shellcheck disable=SC2206 # VBP_PIP_ARGS is a list of words by design
extra=(${VBP_PIP_ARGS:-})
start=$(date +%s)
pip_install() {
  # pip's warnings about the mirror's folder layout ("... is ignored: it is neither a file nor a directory") are noise.
  local status=0
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir "${mirror_args[@]}" "${extra[@]}" "$@" 2>&1 |
    { grep -v "is ignored: it is neither a file nor a directory" >&2 || true; } || status=$?
  return $status
}
pip_install "${requirements[@]}"
if [ ${#no_deps[@]} -gt 0 ]; then pip_install --no-deps "${no_deps[@]}"; fi
echo "compat-venv: $flavour ready in $(($(date +%s) - start)) s: $("$venv/bin/python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)')" >&2
echo "$wanted" >"$stamp"
echo "$venv/bin/python"

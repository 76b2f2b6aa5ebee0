#!/usr/bin/env bash
# Installs the Python side of the model benchmark: lifetimes 0.11.3 in a virtual environment under
# the cargo target directory, with numpy/pandas/scipy/autograd pinned to the last versions that
# lifetimes 0.11.3 (released 2020) still works with on Python 3.11.
#
# Usage: bash model-pipeline/bench/setup.sh    (prints the venv's python path on its last line)
# The benchmark (`cargo bench -p model-pipeline --bench models`) runs this itself if needed.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
venv="$target_dir/lifetimes-bench-venv"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import lifetimes" 2>/dev/null; then
    "$python" -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --disable-pip-version-check --quiet \
        "lifetimes==0.11.3" "numpy==1.26.4" "pandas==2.1.4" "scipy==1.11.4" \
        "autograd==1.6.2" "dill==0.3.8" >&2
fi
"$venv/bin/python" -c "import lifetimes, numpy, pandas, scipy; print('lifetimes', lifetimes.__version__, 'numpy', numpy.__version__, 'pandas', pandas.__version__, 'scipy', scipy.__version__)" >&2
echo "$venv/bin/python"

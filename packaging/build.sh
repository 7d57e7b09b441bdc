#!/usr/bin/env bash
# Build the one-folder SinusApp application with PyInstaller and smoke-test it.
#
#   bash packaging/build.sh            # from the repository root, in the project's venv
#
# Result: packaging/dist/sinusapp/ (run packaging/dist/sinusapp/sinusapp). The smoke test
# runs the built executable's --version and the headless demo, without network access.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import PyInstaller" 2>/dev/null || pip install -q 'pyinstaller>=6.5'
python -c "import torch; assert torch.version.cuda is None, 'use the CPU torch build for a small package'" \
  || echo "warning: this torch is a CUDA build; the package will be several GB" >&2
rm -rf packaging/build packaging/dist
pyinstaller --noconfirm --clean --log-level WARN \
  --workpath packaging/build --distpath packaging/dist packaging/sinusapp.spec
APP=packaging/dist/sinusapp/sinusapp
du -sh packaging/dist/sinusapp
bash packaging/smoke_test.sh "$APP"

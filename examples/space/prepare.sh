#!/usr/bin/env bash
# examples/space/prepare.sh DIR — lays out a Hugging Face Space repository for the
# trigger_training bot in DIR: the workspace's tracked files, with examples/space/Dockerfile
# as Dockerfile and examples/space/README.md (the Space's header: sdk: docker,
# app_port: 7860) as README.md. Then: cd DIR && git init && git remote add space
# https://huggingface.co/spaces/YOU/NAME && git add . && git commit -m bot && git push space main
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEST=${1:?usage: examples/space/prepare.sh DIR}
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
(cd "$ROOT" && git ls-files -z | xargs -0 cp --parents -t "$DEST")
cp "$ROOT/examples/space/Dockerfile" "$DEST/Dockerfile"
cp "$ROOT/examples/space/README.md" "$DEST/README.md"
printf 'target/\n.git/\n' >"$DEST/.dockerignore"
echo "Space repository ready in $DEST"

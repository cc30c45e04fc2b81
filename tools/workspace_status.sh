#!/usr/bin/env bash
# Bazel's --workspace_status_command (.bazelrc): the commit the binaries are
# built from, for jetstream_build_info (common:build_info): $JETSTREAM_COMMIT
# if set (the image's builder stage, which has no .git), else the checkout's
# HEAD ("-dirty" with local changes), else "unknown".
if [[ -n "${JETSTREAM_COMMIT:-}" ]]; then
  commit=$JETSTREAM_COMMIT
else
  commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
  if [[ "$commit" != unknown ]] && ! git diff --quiet HEAD 2>/dev/null; then
    commit="${commit}-dirty"
  fi
fi
echo "STABLE_JETSTREAM_COMMIT ${commit}"

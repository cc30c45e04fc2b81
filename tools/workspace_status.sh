#!/usr/bin/env bash
# Bazel's --workspace_status_command (.bazelrc): the commit the binaries are
# built from, for jetstream_build_info (common:build_info). "unknown" outside
# a git checkout (a source tarball, the image's builder stage).
commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if [[ "$commit" != unknown ]] && ! git diff --quiet HEAD 2>/dev/null; then
  commit="${commit}-dirty"
fi
echo "STABLE_JETSTREAM_COMMIT ${commit}"

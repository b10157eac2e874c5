# Sourced by the scripts: one build directory outside the clone, so that every
# clone on this machine (and every CI run) reuses the same compiled dependencies.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/yunshu-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

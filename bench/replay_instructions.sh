#!/bin/sh
# Instructions per replayed AMQP stream delivery (callgrind) of bench/replay_instructions.py:
# (Ir(stored 2N, replay 2N) - Ir(stored 2N, replay N)) / N, which cancels start-up and appends.
# Usage: sh bench/replay_instructions.sh [N] [--durable]   (N a multiple of 1,000)
# Deterministic (PYTHONHASHSEED=0), so it compares commits on a loaded machine.
N=${1:-5000}
ir() {
    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python bench/replay_instructions.py $((2 * N)) "$1" $2 2>&1 | sed -n 's/.*Collected : //p'
}
a=$(ir "$N" "$2")
b=$(ir $((2 * N)) "$2")
echo "replay${2:+ $2}: $(( (b - a) / N )) instructions/delivery"

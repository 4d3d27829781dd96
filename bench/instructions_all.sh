#!/bin/sh
# Instructions per message (callgrind) for the four hot-path cases of bench/instructions.py:
# (Ir(2 N) - Ir(N)) / N, which cancels start-up. Usage: sh bench/instructions_all.sh [N]
# Deterministic (PYTHONHASHSEED=0), so it compares commits on a loaded machine.
# "native --backlog" is the suite's shape (a backlogged queue; bench/instructions.py rule 4).
N=${1:-2000}
for case in "native" "native --no-ack" "native --backlog" "amqp" "amqp --no-ack"; do
    set -- $case
    a=$(PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python bench/instructions.py "$1" "$N" $2 2>&1 | sed -n 's/.*Collected : //p')
    b=$(PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python bench/instructions.py "$1" $((2 * N)) $2 2>&1 | sed -n 's/.*Collected : //p')
    echo "$case: $(( (b - a) / N )) instructions/message"
done

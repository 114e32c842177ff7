#!/usr/bin/env bash
# Watch a `python -m benchmarks.wide` run: every 5 s, the TCP queues of its processes'
# connections (`ss -tnpi`: Recv-Q is what a process has not read yet, Send-Q what its
# peer has not taken) and py-spy dumps of the client (`--one`) and of the helper process
# that runs the scheduler, into OUT (default /tmp/wide-watch). Stops when the run ends.
#
#   python -m benchmarks.wide --sizes "" --million --ways "taskflow map" &
#   bash benchmarks/watch_wide.sh /tmp/wide-watch
#   python benchmarks/watch_report.py /tmp/wide-watch
#
# Needs py-spy (pip install py-spy) and ss (iproute2).
set -u
out=${1:-/tmp/wide-watch}
mkdir -p "$out"
while pgrep -f "benchmarks.wide --sizes" > /dev/null; do
  ts=$(date +%H%M%S)
  client=$(pgrep -f "benchmarks.wide --one" | head -1)
  # the scheduler's process: the helper whose children are the workers' nannies
  helper=$(pgrep -f "multiprocessing.spawn" | while read -r p; do
             [ "$(pgrep -P "$p" | wc -l)" -gt 0 ] && echo "$p"; done | head -1)
  echo "client=$client scheduler=$helper" > "$out/pids_$ts.txt"
  ss -tnpi state established 2>/dev/null | grep -A1 python > "$out/ss_$ts.txt"
  for pid in $client $helper; do
    timeout 8 py-spy dump --pid "$pid" --nonblocking > "$out/dump_${ts}_$pid.txt" 2>&1
  done
  sleep 4
done

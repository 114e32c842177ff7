"""Getting started: every run is recorded; read the history back."""
import json

from first_flow import etl

from taskflow.history import open_history

if __name__ == "__main__":
    run = etl.run(n=5)
    with open_history() as history:
        record = history.get_run(run.run_id)
        print(record.flow_name, record.state, json.loads(record.parameters))
        for t in history.task_runs(run.run_id):
            print(f"{t.name:<8} {t.state:<8} attempts={t.attempts}")
        for log in history.logs(run.run_id):
            print(f"{log.task}: {log.message}")

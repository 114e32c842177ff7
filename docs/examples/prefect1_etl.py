# A Prefect 1 flow (Prefect 1.4). Not run by the tests: Prefect 1 is not installed here.
from datetime import timedelta

import prefect
from prefect import Flow, Parameter, case, task, unmapped
from prefect.executors import LocalDaskExecutor
from prefect.tasks.control_flow import merge
from prefect.triggers import all_finished


@task(max_retries=3, retry_delay=timedelta(seconds=1))
def extract(n):
    return list(range(n))


@task
def scale(x, factor):
    return x * factor


@task
def is_large(xs):
    return sum(xs) > 100


@task
def report(label, xs):
    prefect.context.get("logger").info("%s: %d", label, sum(xs))
    return f"{label}: {sum(xs)}"


@task(trigger=all_finished)
def cleanup():
    prefect.context.get("logger").info("cleaning up")


with Flow("etl") as flow:
    n = Parameter("n", default=10)
    factor = Parameter("factor", default=2)
    ys = scale.map(extract(n), factor=unmapped(factor))
    large = is_large(ys)
    with case(large, True):
        a = report("large", ys)
    with case(large, False):
        b = report("small", ys)
    out = merge(a, b)
    cleanup(upstream_tasks=[out])

flow.executor = LocalDaskExecutor()

if __name__ == "__main__":
    state = flow.run(parameters={"n": 10})
    print(state.is_successful(), state.result[out].result)

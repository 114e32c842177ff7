"""The Prefect 1 flow of prefect1_etl.py, in taskflow, written the same way."""
from taskflow import Flow, Parameter, case, get_run_logger, merge, task, triggers, unmapped


@task(retries=3, retry_delay=1)  # max_retries -> retries; the delay is in seconds
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
    get_run_logger().info("%s: %d", label, sum(xs))  # prefect.context.get("logger")
    return f"{label}: {sum(xs)}"


@task(trigger=triggers.all_finished)
def cleanup():
    get_run_logger().info("cleaning up")


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
    cleanup(wait_for=[out])  # upstream_tasks= -> wait_for=
    flow.set_return(out)  # what run.result() gives back

if __name__ == "__main__":
    run = flow.run(n=20)  # an embedded LocalCluster; parameters by keyword
    print(run.state.is_successful(), run.result())
    print(run.task_states["report"], run.task_states["report-2"])
    run = flow.run(n=3)
    print(run.state.is_successful(), run.result())

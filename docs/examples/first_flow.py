"""Getting started: a first flow, run on the embedded LocalCluster."""
from taskflow import flow, get_run_logger, task


@task(retries=2, retry_delay=0.5)
def extract(n: int) -> list[int]:
    return list(range(n))


@task
def square(xs: list[int]) -> list[int]:
    return [x * x for x in xs]


@task
def total(xs: list[int]) -> int:
    get_run_logger().info("summing %d numbers", len(xs))
    return sum(xs)


@flow
def etl(n: int = 10):
    return total(square(extract(n)))


if __name__ == "__main__":  # a LocalCluster of processes needs this guard
    run = etl.run(n=100)
    print(run.state)
    print(run.result())
    for name, state in run.task_states.items():
        print(f"{name:<8} {state!r}")
    print(run.dashboard_link)
    print(run.run_page)

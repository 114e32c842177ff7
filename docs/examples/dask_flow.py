"""taskflow: the same computation as a flow, with retries and states."""
from taskflow import flow, task


@task(retries=2, retry_delay=1)
def load(i: int) -> list[int]:
    return list(range(i * 10, i * 10 + 10))


@task
def clean(xs: list[int]) -> list[int]:
    return [x for x in xs if x % 3]


@task
def total(parts: list[list[int]]) -> int:
    return sum(sum(p) for p in parts)


@flow
def pipeline(files: tuple[int, ...] = (0, 1, 2)):
    return total(clean.map(load.map(files)))


if __name__ == "__main__":
    run = pipeline.run()
    print(run.result())
    print(run.state)
    print(list(run.task_states))

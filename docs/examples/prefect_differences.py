"""What behaves differently from Prefect 1, on purpose, shown by running it."""
from taskflow import FAIL, SKIP, FlowDefinitionError, flow, task, triggers


# 1. SKIPPED is finished, but it is not a success.
@task
def new_files():
    raise SKIP("no new files today")


@task
def publish(files):
    return files


@flow
def daily():
    return publish(new_files())


# 2. FAIL ends the task at once: no retries.
@task(retries=3)
def check_quota():
    raise FAIL("quota exhausted")


@flow
def quota():
    return check_quota()


# 3. A trigger that is not met skips the task (it does not fail it).
@task
def load():
    return 1


@task(trigger=triggers.any_failed)
def page_someone(x):
    return "paged"


@flow
def watched():
    return page_someone(load())


# 4. Mapped arguments of different lengths are refused.
@task
def add(x, y):
    return x + y


@flow
def pairs():
    return add.map([1, 2, 3], [10, 20])


if __name__ == "__main__":
    run = daily.run()
    print(1, run.state, run.result())
    skipped = run.task_states["new_files"]
    print(1, skipped, skipped.is_finished(), skipped.is_successful())
    print(1, run.task_states["publish"])

    run = quota.run()
    print(2, run.state.type, run.task_states["check_quota"].attempts)

    run = watched.run()
    print(3, run.state.type, run.task_states["page_someone"])

    try:
        pairs.run()
    except FlowDefinitionError as e:
        print(4, e)

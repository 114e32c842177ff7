"""The same flow once more, as a decorated function: parameters are arguments."""
from prefect_etl import cleanup, extract, is_large, report, scale

from taskflow import case, flow, merge, unmapped


@flow
def etl(n: int = 10, factor: int = 2):
    ys = scale.map(extract(n), factor=unmapped(factor))
    large = is_large(ys)
    with case(large, True):
        a = report("large", ys)
    with case(large, False):
        b = report("small", ys)
    out = merge(a, b)
    cleanup(wait_for=[out])
    return out


if __name__ == "__main__":
    print(etl(n=20))  # calling a flow runs it and returns its result
    print(etl.parameters)

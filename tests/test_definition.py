"""Defining tasks and flows: options, tracing, and clear errors at definition time."""
import inspect
import pickle

import pytest

from taskflow import Flow, FlowDefinitionError, Parameter, ParameterError, flow, task
from taskflow.task import Task
from tests import flows


def test_a_task_called_outside_a_flow_just_runs_its_function():
    assert flows.inc(1) == 2
    assert flows.inc.fn(1) == 2


def test_task_keeps_the_function_signature_name_and_doc():
    @task
    def f(x: int, y: str = "a") -> str:
        """Doc."""
        return y * x

    assert isinstance(f, Task)
    assert inspect.signature(f) == inspect.signature(f.fn)
    assert f.__name__ == "f" and f.__doc__ == "Doc." and f.name == "f"


def test_task_options_default_and_with_options_returns_a_changed_copy():
    t = flows.inc
    assert (t.retries, t.retry_delay, t.timeout, t.priority) == (0, 0.0, None, 0)
    t2 = t.with_options(retries=3, name="inc3", tags={"io"})
    assert (t2.retries, t2.name, t2.tags) == (3, "inc3", frozenset({"io"}))
    assert t.retries == 0 and t2.fn is t.fn


@pytest.mark.parametrize(
    "options, words",
    [
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"retry_delay": "soon"}, "retry_delay"),
        ({"timeout": 0}, "timeout"),
        ({"trigger": "all"}, "trigger"),
        ({"resources": {"GPU": "one"}}, "resources"),
        ({"retry_on": "ValueError"}, "retry_on"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_task_options_are_refused_at_decoration_naming_the_option(options, words):
    with pytest.raises(FlowDefinitionError, match=words):

        @task(**options)
        def f():
            pass


def test_module_level_tasks_pickle_by_reference():
    data = pickle.dumps(flows.inc)
    assert b"tests.flows" in data and len(data) < 200
    assert pickle.loads(data) is flows.inc


def test_tracing_records_nodes_parameters_and_return_value():
    g = flows.etl.graph
    assert [n.name for n in g.nodes] == ["extract", "total"]
    assert list(g.parameters) == ["n"] and not g.parameters["n"].required
    assert flows.etl.parameters == {"n": 10}


def test_a_task_called_twice_gets_unique_run_names():
    @flow
    def twice(x: int = 1):
        return flows.add(flows.inc(x), flows.inc(x))

    assert [n.name for n in twice.graph.nodes] == ["inc", "inc-2", "add"]


def test_calling_a_task_with_arguments_that_do_not_fit_fails_at_trace_time_naming_it():
    @flow
    def bad():
        return flows.add(1)

    with pytest.raises(FlowDefinitionError, match=r"task 'add'.*missing a required argument: 'y'"):
        _ = bad.graph


def test_if_on_a_handle_points_to_conditional_tasks():
    @flow
    def branchy(x: int = 1):
        if flows.inc(x):
            return flows.inc(x)

    with pytest.raises(FlowDefinitionError, match=r"case\("):
        _ = branchy.graph


def test_iterating_or_len_of_a_handle_is_a_clear_error():
    @flow
    def loops(n: int = 3):
        return [flows.inc(x) for x in flows.extract(n)]

    with pytest.raises(FlowDefinitionError, match="map"):
        _ = loops.graph


def test_calling_a_method_of_a_handle_explains_that_handles_are_not_values():
    @flow
    def method(n: int = 3):
        return flows.inc(n).bit_length()  # arithmetic would be a task (tests/test_prefect1.py)

    with pytest.raises(FlowDefinitionError, match="handles, not values"):
        _ = method.graph


def test_flow_functions_need_named_parameters():
    with pytest.raises(FlowDefinitionError, match=r"\*args"):

        @flow
        def star(*args):
            pass


def test_unknown_and_missing_parameters_list_the_valid_names():
    @flow
    def needs(a: int, b: int = 2):
        return flows.add(a, b)

    with pytest.raises(ParameterError, match=r"no parameter 'c'; its parameters are: a, b=2"):
        needs.bind_parameters({"a": 1, "c": 3})
    with pytest.raises(ParameterError, match=r"needs a value for parameter 'a'"):
        needs.bind_parameters({})
    assert needs.bind_parameters({"a": 1}) == {"a": 1, "b": 2}


def test_the_builder_makes_the_same_kind_of_flow():
    g = flows.builder_flow.graph
    assert isinstance(flows.builder_flow, Flow)
    assert [n.name for n in g.nodes] == ["extract", "total"]
    assert flows.builder_flow.parameters == {"n": 3}


def test_parameter_outside_a_flow_is_an_error():
    with pytest.raises(FlowDefinitionError, match="inside `with Flow"):
        Parameter("n")


def test_a_cycle_made_with_the_builder_is_refused_naming_the_tasks():
    with Flow("cyclic") as f:
        a = flows.inc(1)
        b = flows.inc(a)
        c = flows.inc(b)
        with pytest.raises(FlowDefinitionError, match=r"cycle: inc-3 -> inc -> inc-2 -> inc-3|cycle: inc -> inc-2 -> inc-3 -> inc"):
            a.set_upstream(c)
        f.set_return(c)
    # the flow is intact after the refused edge
    assert [n.name for n in f.graph.nodes] == ["inc", "inc-2", "inc-3"]


def test_wait_for_adds_an_ordering_edge_without_data():
    @flow
    def ordered(path: str = "x"):
        first = flows.record(path, "first")
        return flows.record(path, "second", wait_for=[first])

    second = ordered.graph.nodes[-1]
    assert second.data_upstream == () and second.wait_for == (0,)


def test_handles_from_another_flow_are_refused():
    with Flow("one") as one:
        h = flows.inc(1)
    with Flow("two"):
        with pytest.raises(FlowDefinitionError, match="belongs to flow 'one'"):
            flows.inc(h)
    one.set_return(h)


def test_a_subflow_called_in_a_flow_embeds_its_tasks_with_prefixed_names():
    @flow
    def outer(x: int = 1):
        return flows.inc(flows.chain(x))

    names = [n.name for n in outer.graph.nodes]
    assert names == ["chain/inc", "chain/inc-2", "chain/inc-3", "inc"]


def _plain(a, b, c=1, *, d, e=2):  # a signature to check calls against
    return a


def _varargs(a, *rest, **named):
    return a


@pytest.mark.parametrize("fn", [_plain, _varargs])
@pytest.mark.parametrize("args, kwargs", [
    ((1, 2), {"d": 1}), ((1,), {"b": 2, "d": 1}), ((1, 2, 3), {"d": 4, "e": 5}),
    ((1, 2), {}), ((1, 2, 3, 4), {"d": 1}), ((1,), {"a": 1, "b": 2, "d": 3}),
    ((1, 2), {"d": 1, "x": 2}), ((), {"a": 1, "b": 2, "d": 3}), ((), {}),
])
def test_the_quick_call_check_never_accepts_a_call_the_signature_refuses(fn, args, kwargs):
    from taskflow.arguments import binds

    sig = inspect.signature(fn)
    try:
        sig.bind(*args, **kwargs)
        fits = True
    except TypeError:
        fits = False
    quick = binds(sig, args, kwargs)
    assert not quick or fits
    if fn is _plain:  # plain parameters: the quick check decides alone
        assert quick == fits

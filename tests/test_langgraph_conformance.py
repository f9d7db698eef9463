"""ConvstoreSaver passes LangGraph's own checkpointer conformance suite, every capability of it,
on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES, Capability
from langgraph.checkpoint.conformance.spec import test_copy_thread as copy_thread_spec
from langgraph.checkpoint.conformance.spec import test_delete_for_runs as delete_for_runs_spec
from langgraph.checkpoint.conformance.spec import test_delete_thread as delete_thread_spec
from langgraph.checkpoint.conformance.spec import test_get_tuple as get_tuple_spec
from langgraph.checkpoint.conformance.spec import test_list as list_spec
from langgraph.checkpoint.conformance.spec import test_prune as prune_spec
from langgraph.checkpoint.conformance.spec import test_put as put_spec
from langgraph.checkpoint.conformance.spec import test_put_writes as put_writes_spec

import convstore
from convstore.integrations.langgraph import ConvstoreSaver

#: Each capability's tests, as the suite lists them: every one of them must run and pass.
SUITES = {
    Capability.PUT: put_spec.ALL_PUT_TESTS,
    Capability.PUT_WRITES: put_writes_spec.ALL_PUT_WRITES_TESTS,
    Capability.GET_TUPLE: get_tuple_spec.ALL_GET_TUPLE_TESTS,
    Capability.LIST: list_spec.ALL_LIST_TESTS,
    Capability.DELETE_THREAD: delete_thread_spec.ALL_DELETE_THREAD_TESTS,
    Capability.DELETE_FOR_RUNS: delete_for_runs_spec.ALL_DELETE_FOR_RUNS_TESTS,
    Capability.COPY_THREAD: copy_thread_spec.ALL_COPY_THREAD_TESTS,
    Capability.PRUNE: prune_spec.ALL_PRUNE_TESTS,
}


def test_every_capability_of_the_suite_is_covered() -> None:
    """The suite has no capability that this file leaves out (the extended ones included)."""
    assert set(SUITES) == set(ALL_CAPABILITIES)


@pytest.mark.parametrize("capability", sorted(SUITES), ids=str)
@pytest.mark.parametrize("keep_last", [None, 5], ids=["keep_all", "keep_last_5"])
async def test_conformance(
    database_url: str, capability: Capability, keep_last: int | None
) -> None:
    """The capability is detected, and each of its conformance tests runs and passes."""

    @checkpointer_test(name=f"ConvstoreSaver[{capability.value}]")
    async def saver() -> AsyncIterator[ConvstoreSaver]:
        async with convstore.connect(database_url) as store:
            yield ConvstoreSaver(store, keep_last=keep_last)

    report = await validate(saver, capabilities={capability.value})
    result = report.results[capability.value]
    assert result.failures == []
    assert result.detected
    assert result.passed is True
    assert (result.tests_passed, result.tests_failed, result.tests_skipped) == (
        len(SUITES[capability]),
        0,
        0,
    )

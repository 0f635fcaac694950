"""Schemathesis generates requests from our own OpenAPI document: none may end in a 500.

It runs on a stack of its own without a worker, so the jobs it submits (pings with random sleeps)
never queue up in front of other tests' jobs. Operations are driven through hypothesis directly
(schemathesis's pytest plugin does not load under pytest 9).
"""

import collections

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

pytestmark = pytest.mark.slow


def fuzz(operation, headers, statuses):
    @given(case=operation.as_strategy())
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def no_server_error(case):
        response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
        statuses[(case.operation.path, response.status_code)] += 1

    no_server_error()


def test_no_generated_request_is_a_server_error(isolated_stack):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", isolated_stack.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    statuses: collections.Counter[tuple[str, int]] = collections.Counter()
    for operation in operations:
        # A user of its own per operation: logging out, changing the password or failing it five
        # times (a lockout) must not starve the operations fuzzed after it.
        fuzz(operation, isolated_stack.login(isolated_stack.create_user()), statuses)

    # The fuzzing reached the endpoints themselves, not only the authentication guard.
    assert statuses[("/v1/system/ping", 202)] > 0
    assert statuses[("/v1/jobs", 200)] > 0
    assert statuses[("/v1/system/ping", 422)] > 0

"""The shared policy functions as `pulumi_policy` validation policies (the pack's `__main__` only serves them).

Kept apart from `infra/policy/__main__.py` because constructing a `PolicyPack` starts the analyzer's gRPC server:
tests import this module and call the validators directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from auxip_platform.infra.policies import POLICIES, Check

PACK_NAME = "auxip-infra"


def _validator(check: Check) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: Any, report_violation: ReportViolation) -> None:
        for message in check(args.resource_type, args.props):
            report_violation(message, None)

    return validate


def build_policies() -> list[ResourceValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name=policy.name,
            description=policy.description,
            validate=_validator(policy.check),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for policy in POLICIES
    ]

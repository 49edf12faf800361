"""Pulumi policy pack: `pulumi preview --policy-pack infra/policy` (the rules live in auxip_platform.infra.policies)."""

from pulumi_policy import PolicyPack

from auxip_platform.infra.policy_pack import PACK_NAME, build_policies

PolicyPack(name=PACK_NAME, policies=build_policies())

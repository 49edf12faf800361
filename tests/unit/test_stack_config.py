"""Stack configuration: the examples are valid, and every kind of mistake is refused naming its key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auxip_platform.infra.stack_config import StackConfigError, load_stack_config, load_stack_file
from auxip_testing.pulumi_mocks import REPO_ROOT

EXAMPLE_STACKS = sorted(REPO_ROOT.glob("Pulumi.*.yaml"))


def base_config(**overrides: object) -> dict[str, str]:
    config = {"auxip-platform:environment": "dev", "auxip-platform:registryPrefix": "harbor.example/mirror"}
    config.update(
        {
            f"auxip-platform:{key}": value if isinstance(value, str) else json.dumps(value)
            for key, value in overrides.items()
        }
    )
    return config


def test_every_example_stack_exists_and_validates() -> None:
    names = {path.name for path in EXAMPLE_STACKS}
    assert {"Pulumi.dev.yaml", "Pulumi.prod.yaml"} <= names
    environments = {path.name: load_stack_file(path).environment for path in EXAMPLE_STACKS}
    assert environments["Pulumi.dev.yaml"] == "dev"
    assert environments["Pulumi.prod.yaml"] == "prod"


def test_prod_exempts_no_namespace_in_yaml() -> None:
    # The exempt namespaces (logging, calico-system, ...) are system namespaces: level and reason are code, in
    # platform/system_namespaces.py (tests/unit/test_system_namespaces.py), not stack YAML.
    config = load_stack_file(REPO_ROOT / "Pulumi.prod.yaml")
    assert [ns.name for ns in config.kubernetes.namespaces if ns.pod_security != "restricted"] == []


def test_version_string_is_not_turned_into_a_number() -> None:
    config = load_stack_config(base_config(kubernetes={"version": "1.30"}))
    assert config.kubernetes.version == "1.30"


@pytest.mark.parametrize(
    ("overrides", "expected_key", "expected_words"),
    [
        ({"environmnet": "dev"}, "auxip-platform:environmnet", "unknown key"),
        ({"kubernetes": {"version": "1.12"}}, "auxip-platform:kubernetes.version", "must be one of"),
        (
            {"kubernetes": {"namespaces": [{"name": "Bad_Name"}]}},
            "auxip-platform:kubernetes.namespaces.0.name",
            "pattern",
        ),
        (
            {"kubernetes": {"namespaces": [{"name": "logs", "podSecurity": "privileged"}]}},
            "auxip-platform:kubernetes.namespaces.0",
            "exemptionReason",
        ),
        (
            {"kubernetes": {"namespaces": [{"name": "a"}, {"name": "a"}]}},
            "auxip-platform:kubernetes.namespaces",
            "duplicate",
        ),
        ({"layers": {"infra": "maybe"}}, "auxip-platform:layers.infra", "boolean"),
        ({"registryPrefix": "https://harbor.example"}, "auxip-platform:registryPrefix", "pattern"),
        ({"infra": {"provider": "openstack"}}, "auxip-platform:infra.adminCidrs", "Field required"),
        ({"infra": {"provider": "gcp"}}, "auxip-platform:infra.provider", "'openstack' or 'existing'"),
    ],
)
def test_mistakes_name_the_key(overrides: dict[str, object], expected_key: str, expected_words: str) -> None:
    with pytest.raises(StackConfigError) as excinfo:
        load_stack_config(base_config(**overrides))
    message = str(excinfo.value)
    assert f"{expected_key}:" in message
    assert expected_words in message


def test_missing_required_key_is_named() -> None:
    with pytest.raises(StackConfigError, match=r"auxip-platform:environment: Field required"):
        load_stack_config({"auxip-platform:registryPrefix": "harbor.example"})


def test_plaintext_credential_is_refused_but_a_secret_passes_that_check() -> None:
    config = base_config(vaultToken="s.abcdef")
    with pytest.raises(StackConfigError, match=r"auxip-platform:vaultToken: holds a credential in plain text"):
        load_stack_config(config)
    # Declared as a Pulumi secret it gets past the plaintext check and reaches schema validation (unknown key).
    with pytest.raises(StackConfigError, match=r"auxip-platform:vaultToken: unknown key"):
        load_stack_config(config, secret_keys=["auxip-platform:vaultToken"])


def test_stack_file_secure_values_count_as_secrets(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text(
        "config:\n  auxip-platform:environment: dev\n  auxip-platform:registryPrefix: r.example\n"
        "  auxip-platform:adminPassword:\n    secure: AAABAJ0zZ\n"
    )
    with pytest.raises(StackConfigError) as excinfo:
        load_stack_file(path)
    assert "plain text" not in str(excinfo.value)
    assert "auxip-platform:adminPassword: unknown key" in str(excinfo.value)
    assert str(path) in str(excinfo.value)


def test_infra_key_is_optional_and_present_in_the_examples() -> None:
    assert load_stack_config(base_config()).infra is None
    for path in EXAMPLE_STACKS:
        infra = load_stack_file(path).infra
        assert infra is not None, path.name
        assert infra.provider == "openstack"


def test_provider_keys_are_left_to_their_providers() -> None:
    config = base_config()
    config["openstack:authUrl"] = "https://keystone.example:5000/v3"
    assert load_stack_config(config).environment == "dev"


def test_api_server_only_needs_an_absolute_directory_of_charts(tmp_path: Path) -> None:
    assert load_stack_config(base_config()).api_server_only is None
    config = load_stack_config(base_config(apiServerOnly={"chartDirectory": str(tmp_path)}))
    assert config.api_server_only is not None
    assert config.api_server_only.chart_directory == tmp_path
    for wrong in ("charts", str(tmp_path / "missing")):
        with pytest.raises(StackConfigError, match=r"auxip-platform:apiServerOnly.chartDirectory: .*not an absolute"):
            load_stack_config(base_config(apiServerOnly={"chartDirectory": wrong}))
    with pytest.raises(StackConfigError, match=r"auxip-platform:apiServerOnly.chartDirectory: Field required"):
        load_stack_config(base_config(apiServerOnly={}))


def test_example_stacks_never_set_api_server_only() -> None:
    # A real stack waits for its pods and installs charts from the mirror; only the cluster tier sets this.
    assert [path.name for path in EXAMPLE_STACKS if load_stack_file(path).api_server_only is not None] == []

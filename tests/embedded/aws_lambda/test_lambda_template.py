"""deploy/lambda/template.yaml deploys what the package builds, configured as the agent reads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from loadlab.embedded.agent import config
from loadlab.embedded.aws_lambda.deploy import SNAPSTART_RUNTIME
from loadlab.embedded.aws_lambda.package import HANDLER, RUNTIME

TEMPLATE = Path(__file__).resolve().parents[3] / "deploy" / "lambda" / "template.yaml"


class CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (!Ref, !If ...) as plain values."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


CloudFormationLoader.add_multi_constructor("!", _tag)


def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=CloudFormationLoader)
    return loaded


def test_the_function_runs_the_packaged_handler() -> None:
    function = template()["Resources"]["AgentFunction"]
    assert function["Type"] == "AWS::Serverless::Function"
    properties = function["Properties"]
    assert properties["Handler"] == HANDLER
    # The packaged runtime, or the first one SnapStart supports when it is switched on.
    assert properties["Runtime"] == {"If": ["HasSnapStart", SNAPSTART_RUNTIME, RUNTIME]}
    assert properties["CodeUri"] == "build/agent.zip"


def test_snapstart_is_the_real_property_on_published_versions() -> None:
    loaded = template()
    properties = loaded["Resources"]["AgentFunction"]["Properties"]
    assert properties["SnapStart"] == {
        "ApplyOn": {"If": ["HasSnapStart", "PublishedVersions", "None"]}
    }
    assert properties["AutoPublishAlias"] == "live"
    assert loaded["Conditions"]["HasSnapStart"] == {"Equals": [{"Ref": "SnapStart"}, "true"]}
    assert loaded["Parameters"]["SnapStart"]["Default"] == "false"
    assert loaded["Parameters"]["AgentInit"]["AllowedValues"] == ["module", "handler"]


def test_every_variable_is_one_the_agent_reads() -> None:
    variables = template()["Resources"]["AgentFunction"]["Properties"]["Environment"]["Variables"]
    documented = config.__doc__ or ""
    assert variables, "no environment variables"
    for name in variables:
        assert f"``{name}``" in documented, name
    assert {"LOADLAB_JWT_SECRET", "LOADLAB_AGENT_LLM_URL", "LOADLAB_AGENT_TABLE"} <= set(variables)
    assert template()["Parameters"]["JwtSecret"]["NoEcho"] is True


def test_the_table_has_the_checkpoint_key() -> None:
    table = template()["Resources"]["CheckpointTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "session_id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "session_id", "AttributeType": "S"}]

"""CDK assertions for the api, realtime and observability constructs (stage dev, placeholder layers).

What is checked against the synthesised template: who may call the REST API (the JWT authorizer on the
user pool, the public dashboard and probe routes), least privilege (no secret values for the API,
`execute-api:ManageConnections` only for `posts_to_connections` functions), the WebSocket routes and the
broadcaster's stream event sources from the catalogue, and the alarms and dashboard ops rely on.
"""

from __future__ import annotations

from typing import Any

import pytest
from synth import STAGE, synthesised, template_json

from tradeflow.catalogue import FUNCTIONS, QUEUES, TABLES, enabled_functions

pytestmark = pytest.mark.xdist_group("infra")

PUBLIC_ROUTE_KEYS = {"GET /", "GET /dashboard/{proxy+}", "GET /v1/health"}


def _resources(kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template_json()["Resources"].items() if r["Type"] == kind}


def _resolve(value: Any) -> Any:
    stack, _ = synthesised()
    return stack.resolve(value)


def _logical_id(construct: Any) -> str:
    stack, _ = synthesised()
    return str(stack.get_logical_id(construct.node.default_child))


def _function_ids() -> dict[str, str]:
    """Catalogue function name -> the logical id of its AWS::Lambda::Function."""
    by_name = {spec.physical_name(STAGE): name for name, spec in FUNCTIONS.items()}
    found = {}
    for lid, resource in _resources("AWS::Lambda::Function").items():
        name = by_name.get(resource["Properties"].get("FunctionName"))
        if name:
            found[name] = lid
    return found


def _role_of(function_id: str) -> str:
    role = _resources("AWS::Lambda::Function")[function_id]["Properties"]["Role"]
    return str(role["Fn::GetAtt"][0])


def _actions_of_role(role_id: str) -> list[tuple[Any, Any]]:
    """(actions, resources) of every statement of every policy attached to the role."""
    statements = []
    for resource in _resources("AWS::IAM::Policy").values():
        props = resource["Properties"]
        if {"Ref": role_id} not in props.get("Roles", []):
            continue
        for statement in props["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            statements.append((actions if isinstance(actions, list) else [actions], statement.get("Resource")))
    return statements


def _routes(api: Any) -> dict[str, dict[str, Any]]:
    api_ref = {"Ref": _logical_id(api)}
    return {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in _resources("AWS::ApiGatewayV2::Route").values()
        if r["Properties"]["ApiId"] == api_ref
    }


# -- api -------------------------------------------------------------------------------------------------


def test_http_api_has_a_jwt_authorizer_on_the_user_pool_with_the_app_client_as_audience() -> None:
    stack, _ = synthesised()
    api = stack.api
    authorizers = [
        r["Properties"]
        for r in _resources("AWS::ApiGatewayV2::Authorizer").values()
        if r["Properties"]["ApiId"] == {"Ref": _logical_id(api.http_api)}
    ]
    assert len(authorizers) == 1
    (authorizer,) = authorizers
    assert authorizer["AuthorizerType"] == "JWT"
    assert authorizer["IdentitySource"] == ["$request.header.Authorization"]
    jwt = authorizer["JwtConfiguration"]
    assert jwt["Issuer"] == _resolve(api.user_pool.user_pool_provider_url)
    assert jwt["Audience"] == [_resolve(api.client.user_pool_client_id)]


def test_the_proxy_route_is_authorized_and_the_dashboard_and_health_routes_are_public() -> None:
    stack, _ = synthesised()
    routes = _routes(stack.api.http_api)
    proxy = routes["ANY /{proxy+}"]
    assert proxy["AuthorizationType"] == "JWT"
    assert "AuthorizerId" in proxy
    assert set(routes) >= PUBLIC_ROUTE_KEYS
    for key in PUBLIC_ROUTE_KEYS:
        assert routes[key]["AuthorizationType"] == "NONE", key
        assert "AuthorizerId" not in routes[key], key
    # nothing else is public
    public = {key for key, route in routes.items() if route["AuthorizationType"] == "NONE"}
    assert public <= PUBLIC_ROUTE_KEYS | {"GET /v1/version"}


def test_http_stage_is_throttled_and_access_logged() -> None:
    stack, _ = synthesised()
    (stage,) = [
        r["Properties"]
        for r in _resources("AWS::ApiGatewayV2::Stage").values()
        if r["Properties"]["ApiId"] == {"Ref": _logical_id(stack.api.http_api)}
    ]
    assert stage["StageName"] == "$default"
    assert stage["AutoDeploy"] is True
    throttle = stage["DefaultRouteSettings"]
    assert throttle["ThrottlingRateLimit"] == stack.config.api_throttle_rate
    assert throttle["ThrottlingBurstLimit"] == stack.config.api_throttle_burst
    assert "$context.requestId" in stage["AccessLogSettings"]["Format"]


def test_api_function_cannot_read_secret_values() -> None:
    role = _role_of(_function_ids()["api"])
    statements = _actions_of_role(role)
    assert statements
    for actions, _ in statements:
        assert "secretsmanager:GetSecretValue" not in actions
        assert not any(action in ("*", "secretsmanager:*") for action in actions)


def test_api_and_connect_functions_get_the_cognito_settings_auth_reads() -> None:
    stack, _ = synthesised()
    ids = _function_ids()
    functions = _resources("AWS::Lambda::Function")
    issuer = _resolve(stack.api.user_pool.user_pool_provider_url)
    for name in ("api", *(n for n, spec in FUNCTIONS.items() if spec.websocket_route == "$connect")):
        env = functions[ids[name]]["Properties"]["Environment"]["Variables"]
        assert env["TRADEFLOW_AUTH_ISSUER"] == issuer, name
        assert env["TRADEFLOW_AUTH_AUDIENCE"] == _resolve(stack.api.client.user_pool_client_id), name
        assert "TRADEFLOW_AUTH_JWKS_URL" in env, name
    api_env = functions[ids["api"]]["Properties"]["Environment"]["Variables"]
    assert api_env["TRADEFLOW_WS_URL"] == _resolve(stack.realtime.url)
    assert api_env["TRADEFLOW_STRATEGY_FUNCTION_ARN"] == {"Fn::GetAtt": [ids["strategy"], "Arn"]}
    assert "TRADEFLOW_SCHEDULER_ROLE_ARN" in api_env


def test_user_pool_has_no_self_sign_up_a_strong_password_policy_and_mfa() -> None:
    (pool,) = [r["Properties"] for r in _resources("AWS::Cognito::UserPool").values()]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    policy = pool["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12
    assert all(policy[key] for key in ("RequireLowercase", "RequireUppercase", "RequireNumbers", "RequireSymbols"))
    assert pool["MfaConfiguration"] == "ON"
    tenant = next(a for a in pool["Schema"] if a["Name"] == "tenant_id")
    assert tenant["Mutable"] is False
    (client,) = [r["Properties"] for r in _resources("AWS::Cognito::UserPoolClient").values()]
    assert "custom:tenant_id" in client["ReadAttributes"]
    assert "custom:tenant_id" not in client["WriteAttributes"]  # users cannot move themselves to another tenant
    assert client["GenerateSecret"] is False


# -- realtime --------------------------------------------------------------------------------------------


def test_websocket_routes_come_from_the_catalogue() -> None:
    stack, _ = synthesised()
    routes = _routes(stack.realtime.websocket_api)
    expected = {spec.websocket_route for spec in FUNCTIONS.values() if spec.websocket_route}
    assert expected == {"$connect", "$disconnect", "$default"}
    assert set(routes) == expected


def test_only_posts_to_connections_functions_may_manage_connections() -> None:
    ids = _function_ids()
    allowed = {name for name, spec in FUNCTIONS.items() if spec.posts_to_connections}
    assert allowed
    for name, lid in ids.items():
        statements = _actions_of_role(_role_of(lid))
        manage = [resources for actions, resources in statements if "execute-api:ManageConnections" in actions]
        if name in allowed:
            assert manage, name
            assert all("@connections/*" in str(resources) for resources in manage), manage
        else:
            assert not manage, name
        assert not any("execute-api:*" in actions or "*" in actions for actions, _ in statements), name


def test_broadcaster_has_one_stream_mapping_per_catalogue_source_with_partial_batch_responses() -> None:
    ids = _function_ids()
    tables = {
        lid: name
        for lid, r in {**_resources("AWS::DynamoDB::GlobalTable"), **_resources("AWS::DynamoDB::Table")}.items()
        for name, spec in TABLES.items()
        if r["Properties"].get("TableName") == spec.physical_name(STAGE)
    }
    for name, spec in FUNCTIONS.items():
        if not spec.posts_to_connections or not spec.stream_sources:
            continue
        mappings = [
            r["Properties"]
            for r in _resources("AWS::Lambda::EventSourceMapping").values()
            if r["Properties"]["FunctionName"] == {"Ref": ids[name]}
        ]
        assert len(mappings) == len(spec.stream_sources), name
        sources = sorted(tables[m["EventSourceArn"]["Fn::GetAtt"][0]] for m in mappings)
        assert sources == sorted(source.table for source in spec.stream_sources)
        for mapping in mappings:
            assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            assert mapping["BisectBatchOnFunctionError"] is True
            assert "OnFailure" in mapping["DestinationConfig"]


def test_websocket_stage_is_auto_deployed_throttled_and_logged() -> None:
    stack, _ = synthesised()
    (stage,) = [
        r["Properties"]
        for r in _resources("AWS::ApiGatewayV2::Stage").values()
        if r["Properties"]["ApiId"] == {"Ref": _logical_id(stack.realtime.websocket_api)}
    ]
    assert stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert "$context.requestId" in stage["AccessLogSettings"]["Format"]


# -- observability ---------------------------------------------------------------------------------------


def _alarms() -> dict[str, dict[str, Any]]:
    return {r["Properties"]["AlarmName"]: r["Properties"] for r in _resources("AWS::CloudWatch::Alarm").values()}


def _metric(alarm: dict[str, Any]) -> dict[str, Any]:
    """Namespace, MetricName, Dimensions and Period of a single-metric alarm, in either template form
    (plain properties, or a one-entry `Metrics` list when the metric has a label)."""
    if "MetricName" in alarm:
        return {key: alarm.get(key) for key in ("Namespace", "MetricName", "Dimensions", "Period")}
    (query,) = alarm["Metrics"]
    stat = query["MetricStat"]
    return {**stat["Metric"], "Period": stat["Period"]}


def test_an_alarm_per_dead_letter_queue_notifies_the_ops_topic() -> None:
    stack, _ = synthesised()
    alarms = _alarms()
    topic = _resolve(stack.observability.topic.topic_arn)
    for name in QUEUES:
        alarm = alarms[f"tradeflow-{STAGE}-dlq-{name}"]
        assert _metric(alarm)["Namespace"] == "AWS/SQS"
        assert _metric(alarm)["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["Threshold"] == 0
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert topic in alarm["AlarmActions"]


def test_streamer_heartbeat_alarm_breaches_on_missing_data() -> None:
    stack, _ = synthesised()
    alarm = _alarms()[f"tradeflow-{STAGE}-streamer-heartbeat"]
    assert alarm["TreatMissingData"] == "breaching"
    metric = _metric(alarm)
    assert metric["Namespace"] == "tradeflow"
    assert metric["MetricName"] == "StreamerHeartbeat"
    assert metric["Dimensions"] == [{"Name": "service", "Value": "tradeflow-streamer"}]
    assert metric["Period"] == 60 * stack.config.streamer_heartbeat_minutes
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["Threshold"] == 1


def test_error_rate_throttle_halt_and_api_alarms_exist() -> None:
    stack, _ = synthesised()
    alarms = _alarms()
    for name in enabled_functions():  # the optional (flagged) functions are not in the default stage
        errors = alarms[f"tradeflow-{STAGE}-errors-{name}"]
        assert errors["Threshold"] == stack.config.error_rate_threshold_pct
        assert any("errors / invocations" in m.get("Expression", "") for m in errors["Metrics"])
        assert _metric(alarms[f"tradeflow-{STAGE}-throttles-{name}"])["MetricName"] == "Throttles"
    halted = _metric(alarms[f"tradeflow-{STAGE}-trading-halted"])
    assert (halted["MetricName"], halted["Dimensions"]) == (
        "AccountsHalted",
        [{"Name": "service", "Value": "tradeflow-reconcile"}],
    )
    assert _metric(alarms[f"tradeflow-{STAGE}-api-5xx"])["MetricName"] == "5xx"
    assert set(stack.observability.alarms) >= {"trading-halted", "api-5xx", "streamer-heartbeat"}


def test_ops_topic_is_encrypted_and_ssl_only() -> None:
    (topic,) = [r["Properties"] for r in _resources("AWS::SNS::Topic").values()]
    assert "KmsMasterKeyId" in topic
    policies = [r["Properties"] for r in _resources("AWS::SNS::TopicPolicy").values()]
    assert any(
        s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        for p in policies
        for s in p["PolicyDocument"]["Statement"]
    )


def test_dashboard_shows_the_trading_flow_dlqs_handlers_api_and_heartbeat() -> None:
    (dashboard,) = [r["Properties"] for r in _resources("AWS::CloudWatch::Dashboard").values()]
    assert dashboard["DashboardName"] == f"tradeflow-{STAGE}"
    body = str(dashboard["DashboardBody"])
    for metric in (
        "Signals",
        "RiskRejected",
        "OrderMessages",
        "Fills",
        "ApproximateNumberOfMessagesVisible",
        "Errors",
        "Duration",
        "Latency",
        "StreamerHeartbeat",
    ):
        assert f'\\"{metric}\\"' in body or f'"{metric}"' in body, metric

"""Realtime: the WebSocket API that pushes live updates to traders' dashboards.

What is built, all of it from the resource catalogue (`tradeflow.catalogue.FUNCTIONS`):
- an API Gateway WebSocket API with one route per catalogue function that names a `websocket_route`
  (`$connect`, `$disconnect`, `$default`), each a Lambda proxy integration;
- its stage (auto-deployed, throttled, access-logged), whose `wss://` URL is what clients connect to and
  whose `https://…/@connections` endpoint is where replies and updates are posted;
- the broadcaster (every function that consumes DynamoDB streams and posts to connections), built like
  every function by `Pipeline.make`, which also attaches its catalogue triggers: one stream event source
  per catalogue `StreamSource`, with partial batch responses, bisection on error and the `dead_events`
  queue as the on-failure destination, so a poison record never blocks its shard;
- `execute-api:ManageConnections` on this stage's `@connections/*` for the functions that declare
  `posts_to_connections`, and for them only, with `TRADEFLOW_WS_MANAGEMENT_URL` set.

`$connect` has no API Gateway authorizer on purpose: browsers cannot set headers on a WebSocket upgrade, so
the client sends its Cognito ID token as `?token=` and the `ws_connect` function verifies it (signature,
issuer, audience, tenant claim) exactly as the REST API does. The Cognito settings it needs are added by
the `Api` construct, which owns the user pool and is built after this one.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
import jsii
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from tradeflow.catalogue import FUNCTIONS
from tradeflow.realtime import MANAGEMENT_URL_ENV
from tradeflow_infra.config import StageConfig
from tradeflow_infra.functions import acknowledge, nag_resource
from tradeflow_infra.packaging import LayerSet
from tradeflow_infra.pipeline import Pipeline
from tradeflow_infra.storage import Storage

STAGE_NAME = "live"  # one WebSocket stage per stack (the stack itself is the deployment stage)
# Steady-state and burst messages per second for the whole stage: generous for dashboards, a brake on floods.
WS_THROTTLE_RATE = 100
WS_THROTTLE_BURST = 200

# One JSON object per line, queryable with Logs Insights; requestId is required by API Gateway.
WS_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "eventType": "$context.eventType",
        "routeKey": "$context.routeKey",
        "connectionId": "$context.connectionId",
        "status": "$context.status",
        "integrationStatus": "$context.integrationStatus",
        "integrationLatency": "$context.integrationLatency",
        "error": "$context.error.message",
    }
)


@jsii.implements(apigwv2.IAccessLogSettings)
class AccessLogSettings:
    """`IAccessLogSettings` for a stage: a log group and a JSON line format (CDK ships no concrete class)."""

    def __init__(self, log_group: logs.ILogGroup, log_format: str) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)
        self._format = apigateway.AccessLogFormat.custom(log_format)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigateway.AccessLogFormat | None:
        return self._format


def _no_authorizer(route_key: str) -> cdk.Acknowledgment:
    """Why a WebSocket route has no API Gateway authorizer (AwsSolutions-APIG4)."""
    if route_key == "$connect":
        reason = (
            "$connect authenticates in its handler: browsers cannot send an Authorization header on a WebSocket "
            "upgrade, so ws_connect verifies the Cognito ID token of the ?token= query parameter (signature, "
            "issuer, audience, tenant claim) and refuses the connection with 401 otherwise"
        )
    else:
        reason = (
            f"API Gateway authorizes WebSocket connections only at $connect; {route_key} runs on a connection "
            "that ws_connect already authenticated, and its handler takes the tenant from the stored connection"
        )
    return cdk.Acknowledgment(id="AwsSolutions::AwsSolutions-APIG4", reason=reason)


class Realtime(Construct):
    """The WebSocket API, its routes and stage, the connection handlers and the broadcaster.

    Exposes `.websocket_api`, `.stage`, `.url` (wss://, for clients), `.management_url` (https://, the
    `@connections` endpoint) and `.functions` (catalogue name -> function) for the functions built here.
    `storage` and `layers` complete the stack's common signature: the functions get both through
    `pipeline.make`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        storage: Storage,
        pipeline: Pipeline,
        layers: LayerSet,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.websocket_api = apigwv2.WebSocketApi(
            self,
            "WebSocketApi",
            api_name=f"tradeflow-{config.stage}-ws",
            description=f"tradeflow {config.stage}: live updates (orders, fills, positions, signals, bars)",
        )
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.websocket_api,
            stage_name=STAGE_NAME,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=WS_THROTTLE_RATE, burst_limit=WS_THROTTLE_BURST),
            access_log_settings=AccessLogSettings(self.access_logs, WS_ACCESS_LOG_FORMAT),
        )
        self.url: str = self.stage.url
        self.management_url: str = self.stage.callback_url

        # The functions of this concern: the route handlers and the stream consumers that post to sockets
        # (paper_exchange consumes a stream too, but posts nothing: the pipeline owns it).
        names = [
            name
            for name, spec in FUNCTIONS.items()
            if spec.websocket_route or (spec.posts_to_connections and spec.stream_sources)
        ]
        self.functions: dict[str, lambda_.Function] = {}
        self.routes: dict[str, apigwv2.WebSocketRoute] = {}
        for name in names:
            spec = FUNCTIONS[name]
            environment = {MANAGEMENT_URL_ENV: self.management_url} if spec.posts_to_connections else None
            function = pipeline.make(name, environment=environment)
            if spec.posts_to_connections:
                self._grant_manage_connections(function)
            if spec.websocket_route:
                route = self.websocket_api.add_route(
                    spec.websocket_route,
                    integration=integrations.WebSocketLambdaIntegration(f"{name}-integration", function),
                )
                self.routes[spec.websocket_route] = route
                cdk.Validations.of(route).acknowledge(_no_authorizer(spec.websocket_route))
            self.functions[name] = function

    def _grant_manage_connections(self, function: lambda_.Function) -> None:
        """`execute-api:ManageConnections` on this stage's `@connections/*`: post, get and delete any
        connection of this API's stage (connection ids are minted at run time), nothing else."""
        arn = cdk.Stack.of(self).format_arn(
            service="execute-api",
            resource=self.websocket_api.api_id,
            # {stage}/{HTTP method: POST to send, GET to inspect, DELETE to close}/@connections/{connection id}
            resource_name=f"{self.stage.stage_name}/*/@connections/*",
        )
        function.add_to_role_policy(iam.PolicyStatement(actions=["execute-api:ManageConnections"], resources=[arn]))
        assert function.role is not None  # make_function always gives the function its own role
        acknowledge(
            function.role,
            f"IAM5[Resource::{nag_resource(self, arn)}]",
            "WebSocket connection ids are minted by API Gateway at run time: the grant is this API's own stage "
            "only, for its @connections endpoint (POST/GET/DELETE a connection), and only for functions that "
            "declare posts_to_connections in the catalogue",
        )

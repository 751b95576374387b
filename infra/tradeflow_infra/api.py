"""Api: the REST API (API Gateway HTTP API -> the Mangum `api` function) and who may call it (Cognito).

What is built:
- a Cognito user pool: no self sign-up (an operator creates each user with its tenant), sign-in by email,
  a strong password policy, TOTP MFA required, threat protection enforced in prod; and one public app
  client (SRP sign-in, no secret: it runs in browsers and CLIs);
- the HTTP API with a JWT authorizer on that pool (issuer = the pool, audience = the app client) as the
  default authorizer for `ANY /{proxy+}`; the dashboard (`GET /`, `GET /dashboard/{proxy+}`) and the
  liveness/version probes (`GET /v1/health`, `GET /v1/version`) are public: the page holds no data, its
  token rides in the URL fragment and every data call it makes goes through the authorizer;
- a `$default` stage with throttling from the stage config and JSON access logs.

The tenant claim. `tradeflow.api.auth` takes the tenant from the first claim present of `tenant`, then
`custom:tenant_id`. Cognito puts custom attributes in ID tokens (whose `aud` is the app client id) but in
access tokens only through a pre-token-generation trigger on a paid feature plan, so the pool has an
immutable custom attribute `tenant_id`, set by the operator at user creation and not writable by the
app client, and clients send their ID token as the bearer token (REST) and as `?token=` (WebSocket).
The API Gateway authorizer accepts ID tokens (it checks `aud`, or `client_id` when there is no `aud`) and
the function verifies them again (signature, issuer, audience, tenant claim) with the same settings as
`ws_connect`: `TRADEFLOW_AUTH_ISSUER`, `TRADEFLOW_AUTH_AUDIENCE`, `TRADEFLOW_AUTH_JWKS_URL`.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from tradeflow.catalogue import FUNCTIONS
from tradeflow.realtime import CLIENT_URL_ENV
from tradeflow_infra.config import StageConfig
from tradeflow_infra.packaging import LayerSet
from tradeflow_infra.pipeline import Pipeline
from tradeflow_infra.realtime import AccessLogSettings, Realtime
from tradeflow_infra.storage import Storage

FUNCTION = "api"
TENANT_ATTRIBUTE = "tenant_id"  # the ID token claim `custom:tenant_id`, read by tradeflow.api.auth
# Public routes: (path, why no authorizer). Everything else is `ANY /{proxy+}` behind the JWT authorizer.
PUBLIC_ROUTES: dict[str, str] = {
    "/": "the dashboard page: static HTML/JS with no data; it sends the user's token on every API call",
    "/dashboard/{proxy+}": "the dashboard's static files (scripts, styles, config.json with the public API URLs)",
    "/v1/health": "the liveness probe used by deploy checks: answers {status, stage} only",
    "/v1/version": "the package version probe used by deploy checks: answers the version and stage only",
}

API_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "userAgent": "$context.identity.userAgent",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "latency": "$context.responseLatency",
        "integrationLatency": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
        "authorizerError": "$context.authorizer.error",
        "principal": "$context.authorizer.claims.sub",
    }
)


class Api(Construct):
    """The user pool and app client, the HTTP API with its JWT authorizer, stage and the `api` function.

    Exposes `.http_api`, `.stage`, `.user_pool`, `.client`, `.function` and `.url` (https://, the stage).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        storage: Storage,
        pipeline: Pipeline,
        realtime: Realtime,
        layers: LayerSet,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.user_pool = self._user_pool(config)
        self.client = self.user_pool.add_client(
            "Client",
            user_pool_client_name=f"tradeflow-{config.stage}-app",
            auth_flows=cognito.AuthFlow(user_srp=True),  # the password never leaves the client
            generate_secret=False,  # a public client (browser, CLI): a secret could not stay secret
            disable_o_auth=True,  # no hosted UI: users sign in through the SDK (SRP)
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            id_token_validity=cdk.Duration.hours(1),
            access_token_validity=cdk.Duration.hours(1),
            refresh_token_validity=cdk.Duration.days(30),
            read_attributes=cognito.ClientAttributes()
            .with_standard_attributes(email=True, email_verified=True)
            .with_custom_attributes(TENANT_ATTRIBUTE),
            # the tenant is the wall between customers: a user must never be able to change their own
            write_attributes=cognito.ClientAttributes().with_standard_attributes(email=True),
        )
        issuer = self.user_pool.user_pool_provider_url  # https://cognito-idp.{region}.amazonaws.com/{pool id}
        self.auth_environment: dict[str, str] = {
            "TRADEFLOW_AUTH_ISSUER": issuer,
            "TRADEFLOW_AUTH_AUDIENCE": self.client.user_pool_client_id,
            "TRADEFLOW_AUTH_JWKS_URL": f"{issuer}/.well-known/jwks.json",
        }
        # $connect verifies the same tokens (see realtime.py): it gets the same settings.
        for name, function in realtime.functions.items():
            if FUNCTIONS[name].websocket_route == "$connect":
                for key, value in self.auth_environment.items():
                    function.add_environment(key, value)

        self.function: lambda_.Function = pipeline.make(
            FUNCTION,
            # TRADEFLOW_STRATEGY_FUNCTION_ARN and TRADEFLOW_SCHEDULER_ROLE_ARN (the deployments' schedules'
            # target and role) are set by make_function for every function that `manages_schedules`
            environment={**self.auth_environment, CLIENT_URL_ENV: realtime.url},
        )

        authorizer = authorizers.HttpJwtAuthorizer(
            "CognitoAuthorizer",
            issuer,
            jwt_audience=[self.client.user_pool_client_id],
            authorizer_name="cognito",
        )
        integration = integrations.HttpLambdaIntegration("ApiIntegration", self.function)
        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=f"tradeflow-{config.stage}-api",
            description=f"tradeflow {config.stage}: the REST API and the dashboard",
            default_authorizer=authorizer,
            create_default_stage=False,  # the stage below carries throttling and access logs
        )
        self.routes: dict[str, apigwv2.HttpRoute] = {}
        for route in self.http_api.add_routes(
            path="/{proxy+}", methods=[apigwv2.HttpMethod.ANY], integration=integration
        ):
            self.routes["ANY /{proxy+}"] = route
        for path, reason in PUBLIC_ROUTES.items():
            for route in self.http_api.add_routes(
                path=path,
                methods=[apigwv2.HttpMethod.GET],
                integration=integration,
                authorizer=apigwv2.HttpNoneAuthorizer(),
            ):
                self.routes[f"GET {path}"] = route
                cdk.Validations.of(route).acknowledge(
                    cdk.Acknowledgment(id="AwsSolutions::AwsSolutions-APIG4", reason=f"public on purpose: {reason}")
                )

        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=config.log_retention, removal_policy=config.removal_policy
        )
        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.api_throttle_rate, burst_limit=config.api_throttle_burst
            ),
            access_log_settings=AccessLogSettings(self.access_logs, API_ACCESS_LOG_FORMAT),
        )
        self.url: str = self.stage.url

        cdk.CfnOutput(self, "Url", value=self.url, description="the REST API and the dashboard (GET /)")
        cdk.CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id)
        cdk.CfnOutput(self, "UserPoolClientId", value=self.client.user_pool_client_id)
        cdk.CfnOutput(self, "WebSocketUrl", value=realtime.url, description="clients connect with ?token=<ID token>")

    def _user_pool(self, config: StageConfig) -> cognito.UserPool:
        plus = config.is_prod  # threat protection (Plus feature plan) is billed per active user
        pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=f"tradeflow-{config.stage}-users",
            self_sign_up_enabled=False,  # users belong to tenants: an operator creates them with their tenant
            sign_in_aliases=cognito.SignInAliases(email=True),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            custom_attributes={TENANT_ATTRIBUTE: cognito.StringAttribute(min_len=1, max_len=64, mutable=False)},
            password_policy=cognito.PasswordPolicy(
                min_length=14,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=cdk.Duration.days(3),
            ),
            mfa=cognito.Mfa.REQUIRED,  # these users move money
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),  # TOTP: no SMS costs or SIM swaps
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.PLUS if plus else cognito.FeaturePlan.ESSENTIALS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION if plus else None,
            deletion_protection=config.is_prod,
            removal_policy=config.removal_policy,
        )
        if not plus:
            cdk.Validations.of(pool).acknowledge(
                cdk.Acknowledgment(
                    id="AwsSolutions::AwsSolutions-COG8",
                    reason="the Plus feature plan (threat protection: compromised credentials, adaptive "
                    "authentication) is billed per monthly active user; prod pools are on Plus with threat "
                    "protection enforced, dev pools hold test users only and stay on Essentials",
                )
            )
        return pool

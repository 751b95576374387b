"""The streamer: the long-running Fargate task that holds every broker account's persistent streams
(market data, trade updates), writes bars and reports order updates and fills to the `orders` queue.

One task (desired count 1) holds the streams of all broker accounts with active deployments; per-account
leases in `stream_state` make extra tasks safe (a deployment briefly runs two: the new one takes over the
leases the old one releases on SIGTERM). Its image is built from `functions/streamer/Dockerfile` with the
repository root as the build context: synth only stages the files (no Docker needed); `cdk deploy`
builds and pushes the image, so the deploying machine needs Docker (or run the deploy from CI that has it).

Network: a VPC with public subnets only and no NAT gateway; the task gets a public IP for outbound
connections (broker websockets, AWS APIs) and a security group with no ingress rule, so nothing can
connect in. That is as closed as private subnets behind a NAT gateway for a task that only dials out,
at none of the NAT gateway's hourly and per-GB cost. DynamoDB and S3 (image layers from ECR) go
through free gateway endpoints; flow logs record the traffic.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, Fn
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk.aws_ecr_assets import Platform
from constructs import Construct

from tradeflow.catalogue import PREFIX, SERVICES
from tradeflow_infra.config import StageConfig
from tradeflow_infra.functions import acknowledge, base_environment, grant_catalogue_access
from tradeflow_infra.pipeline import Pipeline
from tradeflow_infra.storage import Storage

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = "functions/streamer/Dockerfile"
# The build context is the repository root: send Docker only what the Dockerfile copies (the rest,
# .venv, node_modules, cdk.out, would make every synth stage hundreds of MB).
CONTEXT_EXCLUDE = [
    "*",
    "!pyproject.toml",
    "!README.md",
    "!shared",
    "!functions/streamer",
    "**/__pycache__",
    "**/*.pyc",
    "**/.pytest_cache",
    "**/.mypy_cache",
    "**/*.egg-info",
]
# Seconds between SIGTERM and SIGKILL: closing the streams and releasing the leases takes a few seconds.
STOP_TIMEOUT_SECONDS = 30
# The streamer's own settings (tradeflow.streaming.settings), explicit so ops see and tune them here.
STREAMER_SETTINGS = {
    "TRADEFLOW_STREAMER_REFRESH_SECONDS": "30",
    "TRADEFLOW_STREAMER_LEASE_SECONDS": "30",
    "TRADEFLOW_STREAMER_HEARTBEAT_SECONDS": "15",
    "TRADEFLOW_STREAMER_SILENCE_SECONDS": "60",
    "TRADEFLOW_STREAMER_BAR_GRACE_SECONDS": "5",
}


class Streamer(Construct):
    """`.vpc`, `.cluster`, `.task_definition`, `.service`, `.log_group`, `.security_group`."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, storage: Storage, pipeline: Pipeline
    ) -> None:
        super().__init__(scope, construct_id)
        spec = SERVICES["streamer"]
        name = spec.physical_name(config.stage)

        flow_logs = logs.LogGroup(
            self, "FlowLogs", retention=config.log_retention, removal_policy=config.removal_policy
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            # AZs chosen at deploy time (Fn::GetAZs): no context lookup, nothing hard-coded in the template
            availability_zones=[Fn.select(index, Fn.get_azs()) for index in range(2)],
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24)
            ],
            gateway_endpoints={
                "DynamoDb": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
            },
            flow_logs={
                "all": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=self.vpc,
            description="tradeflow streamer: outbound only (broker streams, AWS APIs); no inbound rule",
            allow_all_outbound=True,
        )
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            cluster_name=name,
            vpc=self.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/ecs/{name}",
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "Task",
            family=name,
            cpu=spec.cpu,
            memory_limit_mib=spec.memory_mb,
            runtime_platform=ecs.RuntimePlatform(
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
                cpu_architecture=ecs.CpuArchitecture.X86_64,
            ),
        )
        findings = grant_catalogue_access(
            self.task_definition.task_role,
            config=config,
            storage=storage,
            queues=pipeline.queues,
            reads=spec.reads,
            writes=spec.writes,
            sends_to=spec.sends_to,
            reads_secrets=spec.reads_secrets,
        )
        for finding in findings:
            acknowledge(
                self.task_definition.task_role,
                f"IAM5[{finding}]",
                f"The streamer reads every broker account's credentials, one secret per tenant account "
                f"(tradeflow-{config.stage}/<tenant>/<account>, created at run time): GetSecretValue only, on "
                "this stage's prefix.",
            )
        self.container = self.task_definition.add_container(
            "streamer",
            container_name="streamer",
            image=ecs.ContainerImage.from_asset(
                str(REPO_ROOT),
                file=DOCKERFILE,
                exclude=CONTEXT_EXCLUDE,
                platform=Platform.LINUX_AMD64,
            ),
            essential=True,
            stop_timeout=Duration.seconds(STOP_TIMEOUT_SECONDS),
            logging=ecs.LogDrivers.aws_logs(stream_prefix="streamer", log_group=self.log_group),
            environment={
                **base_environment(config, "streamer"),  # TRADEFLOW_STAGE, POWERTOOLS_* (namespace tradeflow)
                **STREAMER_SETTINGS,
            },
        )
        acknowledge(
            self.task_definition,
            "ECS2",
            "The environment holds only non-secret settings (stage, metrics namespace, stream timings). Broker "
            "credentials are not injected as container secrets because there is one secret per tenant account, "
            "created at run time: the task reads each account's secret from Secrets Manager when it starts "
            "that account's streams.",
        )
        execution_role = self.task_definition.obtain_execution_role()
        acknowledge(
            execution_role,
            "IAM5[Resource::*]",
            "ecr:GetAuthorizationToken, which the ECS agent needs to pull the streamer image, has no "
            "resource-level permissions.",
        )

        self.service = ecs.FargateService(
            self,
            "Service",
            service_name=name,
            cluster=self.cluster,
            task_definition=self.task_definition,
            desired_count=1,
            # a new task starts before the old one stops; leases hand the accounts over
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            assign_public_ip=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[self.security_group],
            platform_version=ecs.FargatePlatformVersion.LATEST,
            enable_execute_command=False,
        )
        self.service_name = name
        self.metrics_service = f"{PREFIX}-streamer"  # the `service` dimension of its heartbeat metrics

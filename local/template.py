"""Read template.yaml into the few facts the local stack wires: the single source of truth.

CloudFormation's short tags (!Ref, !GetAtt, !Sub) are parsed into their long forms and
resolved against local parameter values and local physical names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from local.throttling import RouteThrottle

__all__ = [
    "LOCAL_SECRETS",
    "ApiSpec",
    "FunctionSpec",
    "LocalNames",
    "QueueSource",
    "QueueSpec",
    "SocketApiSpec",
    "SocketAuthorizer",
    "StreamSource",
    "TableSpec",
    "Template",
    "load_template",
]

ACCOUNT = "123456789012"
# What !Ref AWS::NoValue resolves to until the property holding it is dropped.
_NO_VALUE = object()

# CloudFormation cannot create SecureString parameters: the operator creates them before
# deploying (docs/operations.md). Locally the stack plays the operator: the parameter each of
# these template parameters names holds the secret passed under the name beside it (the
# local stack passes NUDGE_TRACKING_SECRET and NUDGE_WEBHOOK_SECRET), else a dev default.
# The admin key is the stack's own (NUDGE_ADMIN_KEY), put after the resources.
LOCAL_SECRETS = {
    "TrackingSecretParameter": ("TrackingSecret", "dev-tracking-secret"),
    # A throwaway Standard Webhooks secret (whsec_ + base64) for the local stack only.
    "WebhookSecretParameter": ("WebhookSecret", "whsec_ZGV2LXdlYmhvb2stc2VjcmV0LWZvci1udWRnZQ=="),
}


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that understands CloudFormation's short-form intrinsic functions."""


def _intrinsic(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@dataclass(frozen=True)
class LocalNames:
    """How logical ids become physical names and ARNs in the local account."""

    stack: str = "nudge-local"
    region: str = "us-east-1"
    # Where the local WebSocket API listens: what !GetAtt <api>.ApiEndpoint gives here.
    websocket_endpoint: str = "ws://127.0.0.1:3001"

    def physical(self, logical_id: str) -> str:
        return f"{self.stack}-{logical_id}"

    def function_arn(self, logical_id: str) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{self.physical(logical_id)}"

    def queue_arn(self, logical_id: str) -> str:
        return f"arn:aws:sqs:{self.region}:{ACCOUNT}:{self.physical(logical_id)}"

    def table_arn(self, logical_id: str) -> str:
        return f"arn:aws:dynamodb:{self.region}:{ACCOUNT}:table/{self.physical(logical_id)}"


@dataclass(frozen=True)
class StreamSource:
    table: str
    batch_size: int = 100
    starting_position: str = "TRIM_HORIZON"
    maximum_retry_attempts: int = -1
    bisect_on_error: bool = False
    report_batch_item_failures: bool = False
    filters: tuple[dict[str, Any], ...] = ()
    on_failure_queue: str | None = None


@dataclass(frozen=True)
class QueueSource:
    queue: str
    batch_size: int = 10
    report_batch_item_failures: bool = False


@dataclass(frozen=True)
class AsyncInvokeConfig:
    """How Lambda treats the function's asynchronous invocations (Scheduler's, EventBridge's):
    retries after a function error, then the on-failure destination, if any."""

    maximum_retry_attempts: int = 2
    on_failure_queue: str | None = None
    maximum_event_age_seconds: int = 21_600  # Lambda's default: 6 hours


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    code_uri: Path
    layer_paths: tuple[Path, ...]
    environment: dict[str, str]
    timeout: int
    memory: int
    http_routes: tuple[tuple[str, str], ...] = ()
    stream_sources: tuple[StreamSource, ...] = ()
    queue_sources: tuple[QueueSource, ...] = ()
    event_rules: tuple[dict[str, Any], ...] = ()  # EventBridgeRule patterns on the default bus
    async_invoke: AsyncInvokeConfig = field(default_factory=AsyncInvokeConfig)


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class ApiSpec:
    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    max_age: int | None = None
    # The stage's throttling: DefaultRouteSettings, and RouteSettings by route key.
    default_throttle: RouteThrottle | None = None
    route_throttles: dict[str, RouteThrottle] = field(default_factory=dict)


@dataclass(frozen=True)
class SocketAuthorizer:
    function: str  # logical id of the REQUEST authorizer's function
    identity_sources: tuple[str, ...]  # e.g. route.request.querystring.writeKey


@dataclass(frozen=True)
class SocketApiSpec:
    """An API Gateway WebSocket API: its stage, how a frame picks its route, and which
    function each route (and the authorizer of each) runs."""

    logical_id: str
    stage: str
    route_selection: str  # $request.body.<field>
    routes: dict[str, str]  # route key -> function logical id
    authorizers: dict[str, SocketAuthorizer]  # route key -> its authorizer


@dataclass(frozen=True)
class Template:
    root: Path
    functions: dict[str, FunctionSpec]
    tables: dict[str, TableSpec]
    queues: dict[str, QueueSpec]
    api: ApiSpec
    names: LocalNames = field(default_factory=LocalNames)
    schedule_groups: tuple[str, ...] = ()
    email_identities: tuple[str, ...] = ()
    email_configuration_sets: tuple[str, ...] = ()
    # SES event types the configuration sets publish to EventBridge (SEND, BOUNCE, ...).
    email_event_types: tuple[str, ...] = ()
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)  # the recurring ones
    parameters: dict[str, str] = field(default_factory=dict)
    socket_apis: tuple[SocketApiSpec, ...] = ()
    # SSM SecureString name -> value: what the operator would have put before deploying.
    secure_strings: dict[str, str] = field(default_factory=dict)
    buckets: tuple[str, ...] = ()  # S3 buckets, by physical name


def load_template(
    path: Path, overrides: Mapping[str, str] | None = None, names: LocalNames | None = None
) -> Template:
    names = names or LocalNames()
    document = yaml.load(path.read_text(), Loader=_CfnLoader)
    parameters = _parameter_values(document.get("Parameters", {}), overrides or {})
    resources: dict[str, Any] = document.get("Resources", {})
    resolver = _Resolver(parameters, resources, names)
    resolver.conditions = document.get("Conditions", {})
    globals_ = document.get("Globals", {}).get("Function", {})
    root = path.parent.resolve()
    functions = {
        logical_id: _function(
            logical_id, resource["Properties"], globals_, resources, resolver, root
        )
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    tables = {
        logical_id: TableSpec(logical_id, resolver.resolve(resource.get("Properties", {})))
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }
    queues = {
        logical_id: QueueSpec(logical_id, resolver.resolve(resource.get("Properties", {})))
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::SQS::Queue"
    }
    schedule_groups = tuple(
        str(resolver.ref(logical_id))
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Scheduler::ScheduleGroup"
    )
    email_identities = tuple(
        str(resolver.resolve(resource["Properties"]["EmailIdentity"]))
        for resource in resources.values()
        if resource["Type"] == "AWS::SES::EmailIdentity"
    )
    email_configuration_sets = tuple(
        str(
            resolver.resolve(
                resource.get("Properties", {}).get("Name") or names.physical(logical_id)
            )
        )
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::SES::ConfigurationSet"
    )
    email_event_types = tuple(
        str(kind)
        for resource in resources.values()
        if resource["Type"] == "AWS::SES::ConfigurationSetEventDestination"
        and "EventBridgeDestination" in resource["Properties"]["EventDestination"]
        and resource["Properties"]["EventDestination"].get("Enabled", False)
        for kind in resource["Properties"]["EventDestination"].get("MatchingEventTypes", [])
    )
    schedules = {
        logical_id: resolver.resolve(resource.get("Properties", {}))
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Scheduler::Schedule"
    }
    buckets = tuple(
        str(resolver.ref(logical_id))
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::S3::Bucket"
    )
    return Template(
        buckets=buckets,
        schedules=schedules,
        email_event_types=email_event_types,
        email_identities=email_identities,
        email_configuration_sets=email_configuration_sets,
        schedule_groups=schedule_groups,
        root=root,
        functions=functions,
        tables=tables,
        queues=queues,
        api=_api(resources, resolver),
        names=names,
        parameters=parameters,
        socket_apis=_socket_apis(resources, resolver),
        secure_strings=_secure_strings(parameters, overrides or {}),
    )


def _secure_strings(parameters: Mapping[str, str], overrides: Mapping[str, str]) -> dict[str, str]:
    return {
        parameters[name]: overrides.get(secret) or default
        for name, (secret, default) in LOCAL_SECRETS.items()
        if parameters.get(name)
    }


def _parameter_values(declared: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in overrides:
            values[name] = overrides[name]
        elif "Default" in spec:
            values[name] = str(spec["Default"])
        else:
            raise ValueError(f"template parameter {name} has no default; pass it as an override")
    return values


class _Resolver:
    def __init__(
        self, parameters: Mapping[str, str], resources: Mapping[str, Any], names: LocalNames
    ):
        self._parameters = parameters
        self._resources = resources
        self._names = names
        self.conditions: Mapping[str, Any] = {}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                return self.get_att(*argument)
            if key == "Fn::Sub":
                return self.sub(argument)
            if key == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.condition(name) else when_false)
        resolved = {key: self.resolve(inner) for key, inner in value.items()}
        # A property set to !Ref AWS::NoValue is removed, as CloudFormation removes it.
        return {key: inner for key, inner in resolved.items() if inner is not _NO_VALUE}

    def condition(self, name: str) -> bool:
        return bool(self._truth(self.conditions[name]))

    def _truth(self, expression: Any) -> Any:
        """The condition functions CloudFormation allows: Equals, Not, And, Or, Condition."""
        if isinstance(expression, dict) and len(expression) == 1:
            ((key, argument),) = expression.items()
            if key == "Fn::Equals":
                left, right = (self.resolve(side) for side in argument)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self._truth(argument[0])
            if key == "Fn::And":
                return all(self._truth(inner) for inner in argument)
            if key == "Fn::Or":
                return any(self._truth(inner) for inner in argument)
            if key == "Condition":
                return self.condition(argument)
        return self.resolve(expression)

    def ref(self, name: str) -> Any:
        if name in self._parameters:
            return self._parameters[name]
        if name == "AWS::NoValue":
            return _NO_VALUE
        pseudo = {
            "AWS::Region": self._names.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::URLSuffix": "localhost",
            "AWS::Partition": "aws",
            "AWS::StackName": self._names.stack,
        }
        if name in pseudo:
            return pseudo[name]
        resource = self._resources.get(name)
        if resource is None:
            raise ValueError(f"!Ref {name}: no such parameter or resource")
        if resource["Type"] == "AWS::SQS::Queue":
            return f"{{queue-url:{self._names.physical(name)}}}"  # a URL only moto knows
        if resource["Type"] == "AWS::S3::Bucket":
            return self._names.physical(name).lower()  # S3 takes lower-case names only
        explicit = resource.get("Properties", {}).get("Name")
        named = ("AWS::Scheduler::ScheduleGroup", "AWS::SES::ConfigurationSet")
        if resource["Type"] in named and explicit:
            return str(self.resolve(explicit))
        return self._names.physical(name)

    def get_att(self, name: str, attribute: str) -> str:
        kind = self._resources[name]["Type"]
        if kind == "AWS::DynamoDB::Table":
            return {"Arn": self._names.table_arn(name), "StreamArn": f"stream:{name}"}[attribute]
        if kind == "AWS::SQS::Queue":
            return {"Arn": self._names.queue_arn(name), "QueueName": self._names.physical(name)}[
                attribute
            ]
        if kind == "AWS::Serverless::Function":
            return {"Arn": self._names.function_arn(name)}[attribute]
        if kind == "AWS::ApiGatewayV2::Api":
            return {"ApiEndpoint": self._names.websocket_endpoint, "ApiId": name}[attribute]
        if kind == "AWS::S3::Bucket":
            return {"Arn": f"arn:aws:s3:::{self.ref(name)}"}[attribute]
        if kind == "AWS::IAM::Role":
            return {"Arn": f"arn:aws:iam::{ACCOUNT}:role/{self._names.physical(name)}"}[attribute]
        raise ValueError(f"!GetAtt {name}.{attribute}: not modelled by the local stack")

    def sub(self, argument: Any) -> str:
        text, variables = (
            (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        )

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in variables:
                return str(self.resolve(variables[token]))
            if "." in token:
                return self.get_att(*token.split(".", 1))
            return str(self.ref(token))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)


def _function(
    logical_id: str,
    properties: Mapping[str, Any],
    globals_: Mapping[str, Any],
    resources: Mapping[str, Any],
    resolver: _Resolver,
    root: Path,
) -> FunctionSpec:
    merged = {**globals_, **properties}
    environment = {
        **globals_.get("Environment", {}).get("Variables", {}),
        **properties.get("Environment", {}).get("Variables", {}),
    }
    layer_paths = []
    # SAM adds a function's Layers to the Globals' (lists in Globals are additive).
    for layer in [*globals_.get("Layers", []), *properties.get("Layers", [])]:
        layer_id = layer.get("Ref") if isinstance(layer, dict) else None
        if layer_id and resources.get(layer_id, {}).get("Type") == "AWS::Serverless::LayerVersion":
            layer_paths.append(root / resources[layer_id]["Properties"]["ContentUri"])
    events = properties.get("Events", {})
    routes, streams, queues = _event_sources(events, resolver)
    rules = tuple(
        resolver.resolve(event["Properties"]["Pattern"])
        for event in events.values()
        if event["Type"] == "EventBridgeRule"
    )
    return FunctionSpec(
        logical_id=logical_id,
        handler=merged["Handler"],
        code_uri=root / merged["CodeUri"],
        layer_paths=tuple(layer_paths),
        environment={name: str(value) for name, value in resolver.resolve(environment).items()},
        timeout=int(merged.get("Timeout", 3)),
        memory=int(merged.get("MemorySize", 128)),
        http_routes=tuple(routes),
        stream_sources=tuple(streams),
        queue_sources=tuple(queues),
        event_rules=rules,
        async_invoke=_async_invoke(merged.get("EventInvokeConfig", {})),
    )


def _async_invoke(config: Mapping[str, Any]) -> AsyncInvokeConfig:
    on_failure = config.get("DestinationConfig", {}).get("OnFailure", {})
    destination = on_failure.get("Destination") if on_failure.get("Type") == "SQS" else None
    return AsyncInvokeConfig(
        maximum_retry_attempts=int(config.get("MaximumRetryAttempts", 2)),
        on_failure_queue=_logical_of(destination) if destination else None,
        maximum_event_age_seconds=int(config.get("MaximumEventAgeInSeconds", 21_600)),
    )


def _event_sources(
    events: Mapping[str, Any], resolver: _Resolver
) -> tuple[list[tuple[str, str]], list[StreamSource], list[QueueSource]]:
    routes: list[tuple[str, str]] = []
    streams: list[StreamSource] = []
    queues: list[QueueSource] = []
    for event in events.values():
        kind, props = event["Type"], event.get("Properties", {})
        if kind == "HttpApi":
            routes.append((str(props.get("Method", "ANY")).upper(), props.get("Path", "$default")))
        elif kind == "DynamoDB":
            streams.append(_stream_source(props, resolver))
        elif kind == "SQS":
            queues.append(
                QueueSource(
                    queue=_logical_of(props["Queue"]),
                    batch_size=int(props.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in props.get("FunctionResponseTypes", []),
                )
            )
    return routes, streams, queues


def _stream_source(props: Mapping[str, Any], resolver: _Resolver) -> StreamSource:
    filters = tuple(
        json.loads(item["Pattern"]) if isinstance(item["Pattern"], str) else item["Pattern"]
        for item in props.get("FilterCriteria", {}).get("Filters", [])
    )
    on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    return StreamSource(
        table=_logical_of(props["Stream"]),
        batch_size=int(props.get("BatchSize", 100)),
        starting_position=props.get("StartingPosition", "TRIM_HORIZON"),
        maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
        bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
        report_batch_item_failures="ReportBatchItemFailures"
        in props.get("FunctionResponseTypes", []),
        filters=filters,
        on_failure_queue=_logical_of(on_failure) if on_failure else None,
    )


def _logical_of(reference: Any) -> str:
    """The logical id behind a !Ref X or !GetAtt X.Attr."""
    if isinstance(reference, dict):
        if "Ref" in reference:
            return str(reference["Ref"])
        if "Fn::GetAtt" in reference:
            return str(reference["Fn::GetAtt"][0])
    raise ValueError(f"cannot tell which resource {reference!r} names")


def _api(resources: Mapping[str, Any], resolver: _Resolver) -> ApiSpec:
    for resource in resources.values():
        if resource["Type"] == "AWS::Serverless::HttpApi":
            properties = {
                name: resolver.resolve(value)
                for name, value in resource.get("Properties", {}).items()
                if name in ("CorsConfiguration", "DefaultRouteSettings", "RouteSettings")
            }
            cors = properties.get("CorsConfiguration", {})
            origins = cors.get("AllowOrigins", [])
            routes = properties.get("RouteSettings", {})
            return ApiSpec(
                allow_origins=tuple(origins.split(",") if isinstance(origins, str) else origins),
                allow_methods=tuple(cors.get("AllowMethods", [])),
                allow_headers=tuple(cors.get("AllowHeaders", [])),
                max_age=cors.get("MaxAge"),
                default_throttle=_throttle(properties.get("DefaultRouteSettings", {})),
                route_throttles={
                    str(key): throttle
                    for key, settings in routes.items()
                    if (throttle := _throttle(settings)) is not None
                },
            )
    return ApiSpec()


def _throttle(settings: Mapping[str, Any]) -> RouteThrottle | None:
    """A route setting's throttling; None when it sets neither limit."""
    rate, burst = settings.get("ThrottlingRateLimit"), settings.get("ThrottlingBurstLimit")
    if rate is None and burst is None:
        return None
    if rate is None or burst is None:
        raise ValueError("route settings must give ThrottlingRateLimit and ThrottlingBurstLimit")
    return RouteThrottle(rate=float(rate), burst=int(burst))


def _socket_apis(resources: Mapping[str, Any], resolver: _Resolver) -> tuple[SocketApiSpec, ...]:
    """The WebSocket APIs: each route's integration (or authorizer) is a Lambda proxy whose
    URI names the function as ``${Function.Arn}``; that is the wiring read here."""

    def of_type(kind: str, api: str) -> dict[str, Any]:
        return {
            logical_id: resource["Properties"]
            for logical_id, resource in resources.items()
            if resource["Type"] == kind and _logical_of(resource["Properties"]["ApiId"]) == api
        }

    apis = []
    for api_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] != "AWS::ApiGatewayV2::Api":
            continue
        if properties.get("ProtocolType") != "WEBSOCKET":
            continue
        integrations = {
            logical_id: _function_in_uri(props["IntegrationUri"])
            for logical_id, props in of_type("AWS::ApiGatewayV2::Integration", api_id).items()
        }
        authorizers = {
            logical_id: SocketAuthorizer(
                function=_function_in_uri(props["AuthorizerUri"]),
                identity_sources=tuple(props.get("IdentitySource", [])),
            )
            for logical_id, props in of_type("AWS::ApiGatewayV2::Authorizer", api_id).items()
        }
        routes: dict[str, str] = {}
        route_authorizers: dict[str, SocketAuthorizer] = {}
        for props in of_type("AWS::ApiGatewayV2::Route", api_id).values():
            key = str(props["RouteKey"])
            target = props["Target"]
            text = target["Fn::Sub"] if isinstance(target, dict) else str(target)
            routes[key] = integrations[_first_reference(text)]
            if props.get("AuthorizationType") == "CUSTOM":
                route_authorizers[key] = authorizers[_logical_of(props["AuthorizerId"])]
        stages = of_type("AWS::ApiGatewayV2::Stage", api_id)
        stage = next((str(resolver.resolve(p["StageName"])) for p in stages.values()), "$default")
        apis.append(
            SocketApiSpec(
                logical_id=api_id,
                stage=stage,
                route_selection=str(properties.get("RouteSelectionExpression", "")),
                routes=routes,
                authorizers=route_authorizers,
            )
        )
    return tuple(apis)


def _function_in_uri(uri: Any) -> str:
    """The function a Lambda proxy URI names: .../functions/${Function.Arn}/invocations."""
    text = uri["Fn::Sub"] if isinstance(uri, dict) else str(uri)
    match = re.search(r"\$\{([A-Za-z0-9]+)\.Arn\}", text)
    if not match:
        raise ValueError(f"cannot tell which function {text!r} invokes")
    return match.group(1)


def _first_reference(text: str) -> str:
    match = re.search(r"\$\{([A-Za-z0-9]+)\}", text)
    if not match:
        raise ValueError(f"cannot tell which resource {text!r} names")
    return match.group(1)

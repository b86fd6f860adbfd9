"""The local stack's reading of template.yaml's WebSocket API: its stage, its routes and
the function behind each, the $connect authorizer and its identity source, and what
!GetAtt <api>.ApiEndpoint gives locally (LocalNames.websocket_endpoint)."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.template import LocalNames, SocketApiSpec, SocketAuthorizer, load_template
from tests.conftest import REPO

PARAMETERS = {"WriteKey": "k", "TrackingSecret": "s"}
LOCAL_ENDPOINT = "ws://127.0.0.1:4567"


def test_the_websocket_api_is_read_from_the_template() -> None:
    """One WebSocket API: stage live, routed by the body's action, every route run by the
    Socket function, $connect behind the write-key authorizer."""
    # given
    path = REPO / "template.yaml"

    # when
    template = load_template(path, PARAMETERS)

    # then
    assert template.socket_apis == (
        SocketApiSpec(
            logical_id="SocketApi",
            stage="live",
            route_selection="$request.body.action",
            routes={
                "$connect": "Socket",
                "$disconnect": "Socket",
                "sync": "Socket",
                "ack": "Socket",
            },
            authorizers={
                "$connect": SocketAuthorizer(
                    function="Socket", identity_sources=("route.request.querystring.writeKey",)
                )
            },
        ),
    )


def test_the_stage_follows_the_websocket_stage_parameter() -> None:
    """WebSocketStage given: the API's stage and the functions' endpoint use it."""
    # given
    overrides = {**PARAMETERS, "WebSocketStage": "beta"}

    # when
    template = load_template(REPO / "template.yaml", overrides)

    # then
    (api,) = template.socket_apis
    assert api.stage == "beta"
    assert template.functions["Socket"].environment["NUDGE_SOCKET_ENDPOINT"].endswith("/beta")


@pytest.mark.parametrize("function", ["Socket", "Send"])
def test_get_att_api_endpoint_is_the_local_websocket_endpoint(function: str) -> None:
    """!GetAtt SocketApi.ApiEndpoint is LocalNames.websocket_endpoint, so Send and Socket
    post to the local WebSocket API at <endpoint>/<stage>."""
    # given
    names = LocalNames(websocket_endpoint=LOCAL_ENDPOINT)

    # when
    template = load_template(REPO / "template.yaml", PARAMETERS, names)

    # then
    environment = template.functions[function].environment
    assert environment["NUDGE_SOCKET_ENDPOINT"] == f"{LOCAL_ENDPOINT}/live"


def test_the_default_websocket_endpoint_is_port_3001() -> None:
    """Without names given, the endpoint is the local stack's default port."""
    # given: the default LocalNames

    # when
    template = load_template(REPO / "template.yaml", PARAMETERS)

    # then
    endpoint = template.functions["Socket"].environment["NUDGE_SOCKET_ENDPOINT"]
    assert endpoint == "ws://127.0.0.1:3001/live"


def test_the_socket_function_has_the_write_key_and_the_table() -> None:
    """The Socket function gets the write key its authorizer checks and the table name
    every function gets from Globals."""
    # given
    overrides = {**PARAMETERS, "WriteKey": "site-key"}

    # when
    template = load_template(REPO / "template.yaml", overrides)

    # then
    socket = template.functions["Socket"]
    assert socket.environment["NUDGE_WRITE_KEY"] == "site-key"
    assert socket.environment["NUDGE_TABLE_NAME"] == template.names.physical("Table")


# A WebSocket API with one route and no stage, beside an HTTP API; URI: the integration's.
MINIMAL = """\
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: x, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.op}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: URI
  Route:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $default
      Target: !Sub "integrations/${Integration}"
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: fn, Handler: app.handler, Runtime: python3.13}
  HttpOnly:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: y, ProtocolType: HTTP}
"""


def test_a_websocket_api_without_a_stage_is_on_default_and_http_apis_are_not_read(
    tmp_path: Path,
) -> None:
    """A WebSocket API with no Stage resource serves $default; an HTTP API is no socket API."""
    # given
    uri = '!Sub "arn:aws:apigateway:us-east-1:lambda:path/functions/${Fn.Arn}/invocations"'
    path = tmp_path / "template.yaml"
    path.write_text(MINIMAL.replace("URI", uri))

    # when
    template = load_template(path)

    # then
    assert template.socket_apis == (
        SocketApiSpec(
            logical_id="Api",
            stage="$default",
            route_selection="$request.body.op",
            routes={"$default": "Fn"},
            authorizers={},
        ),
    )


def test_an_integration_naming_no_function_is_refused(tmp_path: Path) -> None:
    """An integration URI that names no ${Function.Arn} cannot be run locally: a
    ValueError saying so, not a guess."""
    # given
    uri = '"arn:aws:apigateway:us-east-1:lambda:path/functions/arn:aws:lambda:fn/invocations"'
    path = tmp_path / "template.yaml"
    path.write_text(MINIMAL.replace("URI", uri))

    # when / then
    with pytest.raises(ValueError, match="cannot tell which function"):
        load_template(path)


def test_the_signing_secrets_become_the_secure_strings_the_template_names() -> None:
    """Locally the stack plays the operator: the SSM parameters named by
    TrackingSecretParameter and WebhookSecretParameter hold the secrets it was given."""
    # given
    given = {"WriteKey": "k", "TrackingSecret": "new,old", "WebhookSecret": "whsec_bmV3"}

    # when
    template = load_template(REPO / "template.yaml", given)

    # then
    assert template.secure_strings == {
        "/nudge/tracking-secret": "new,old",
        "/nudge/webhook-secret": "whsec_bmV3",
    }


def test_without_secrets_given_the_local_stack_uses_dev_defaults() -> None:
    """`make run` and the tests need no set-up: each secret has a throwaway default."""
    # when
    template = load_template(REPO / "template.yaml", {"WriteKey": "k"})

    # then
    assert template.secure_strings["/nudge/tracking-secret"] == "dev-tracking-secret"
    assert template.secure_strings["/nudge/webhook-secret"].startswith("whsec_")

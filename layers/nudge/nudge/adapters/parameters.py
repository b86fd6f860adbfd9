"""Secrets from SSM Parameter Store SecureStrings (the admin key, the signing secrets).

A function reads each once per process, at cold start: a Lambda environment variable would
show the value to anyone allowed ``lambda:GetFunctionConfiguration``, a parameter only to
whoever may ``ssm:GetParameter`` that one name (and decrypt it: the AWS-managed ``aws/ssm``
key lets every principal of the account do that, so the IAM policy is the control).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nudge.adapters.aws_errors import aws_call
from nudge.config import ConfigError
from nudge.service.ports import Missing

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

__all__ = ["SecureParameters"]


class SecureParameters:
    def __init__(self, client: SSMClient) -> None:
        self._client = client

    def value(self, name: str) -> str:
        """The decrypted value; ConfigError when the parameter is missing or empty (a
        deploy mistake: the function refuses to start rather than sign with nothing)."""
        try:
            with aws_call(f"reading the SSM parameter {name}"):
                answer = self._client.get_parameter(Name=name, WithDecryption=True)
        except Missing:
            raise ConfigError(
                f"the SSM parameter {name} does not exist: create it as a SecureString"
                " before deploying (docs/operations.md)"
            ) from None
        value = answer["Parameter"].get("Value", "").strip()
        if not value:
            raise ConfigError(f"the SSM parameter {name} is empty")
        return value

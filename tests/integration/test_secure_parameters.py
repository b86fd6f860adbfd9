"""Secrets from SSM SecureStrings: read decrypted, and a missing one refuses the cold start."""

from __future__ import annotations

import boto3
import pytest
from nudge.adapters.parameters import SecureParameters
from nudge.config import ConfigError

from tests.integration._harness import Aws


def test_a_secure_string_is_read_decrypted(aws: Aws):
    # given
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/nudge/test-secret", Value="s3cret", Type="SecureString")
    # then
    assert SecureParameters(ssm).value("/nudge/test-secret") == "s3cret"


def test_a_missing_parameter_is_a_configuration_error_naming_it(aws: Aws):
    with pytest.raises(ConfigError, match="/nudge/never-created does not exist"):
        SecureParameters(boto3.client("ssm")).value("/nudge/never-created")

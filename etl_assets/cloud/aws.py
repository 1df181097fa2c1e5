"""AWS clients for `etl-assets cloud`, and AWS's errors turned into what to do about them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from etl_assets.cloud.settings import CloudRefusal, CloudSettings

# codes of an endpoint that does not offer the operation; "500"/"501" are what botocore names
# an answer that is not an AWS error document at all (an S3-compatible or test endpoint)
_NOT_AVAILABLE = {
    "UnknownOperationException",
    "InvalidAction",
    "NotImplemented",
    "404",
    "500",
    "501",
}


class Aws:
    """One client per service, all pointed at ETL_AWS_ENDPOINT_URL when it is set."""

    def __init__(self, settings: CloudSettings) -> None:
        self.settings = settings
        self._session = boto3.session.Session(region_name=settings.region)
        self._clients: dict[str, object] = {}

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = self._session.client(
                service,
                endpoint_url=self.settings.endpoint_url,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}),
            )
        return self._clients[service]

    @cached_property
    def account(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]

    def check_credentials(self) -> None:
        with aws_errors("checking your AWS credentials"):
            if self._session.get_credentials() is None:
                raise NoCredentialsError()
            _ = self.account


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


@contextmanager
def aws_errors(doing: str) -> Iterator[None]:
    """AWS's refusals as a CloudRefusal that says what to do."""
    try:
        yield
    except NoCredentialsError:
        raise CloudRefusal(
            "no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and"
            " AWS_SECRET_ACCESS_KEY), or run where an instance role applies, then try again"
        ) from None
    except EndpointConnectionError as error:
        raise CloudRefusal(
            f"{doing}: cannot reach {error.kwargs.get('endpoint_url', 'the endpoint')}; the"
            " service may not exist in this region (AWS_REGION)"
        ) from None
    except ClientError as error:
        code = error_code(error)
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            raise CloudRefusal(f"{doing}: your AWS identity may not do this ({code})") from None
        raise


def service_unavailable(error: Exception) -> bool:
    """The service does not answer this operation here (a region without it, or an endpoint
    that does not implement it)."""
    if isinstance(error, EndpointConnectionError):
        return True
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return error_code(error) in _NOT_AVAILABLE or status in (404, 501)
    return False

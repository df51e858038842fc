"""The seed's end-to-end test flow (Pocket's `examples/s3_download_flow`, Prefect 1), in Weir:
download one object from S3 and report its size. Bucket and key are parameters, so Quick run
shows them prefilled and editable.

Needs boto3 (`pip install boto3`); credentials and region come from the usual AWS settings
(on ECS: the task role), `AWS_ENDPOINT_URL` points it at a local S3 such as moto's.
"""

import weir


def transient(e: BaseException) -> bool:
    """Worth retrying: the network or S3 having a bad moment — not a missing key or bucket."""
    from botocore.exceptions import ClientError, ConnectionError, EndpointConnectionError

    if isinstance(e, (EndpointConnectionError, ConnectionError)):
        return True
    return isinstance(e, ClientError) and e.response["Error"]["Code"] in {
        "SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"}


@weir.task(retries=3, retry_delay=10, backoff=2, retry_if=transient, timeout=600)
def s3_download(bucket: str, key: str) -> bytes:
    """Reads the whole object."""
    import boto3

    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


@weir.flow(name="s3_download_flow")
def s3_download_flow(
    bucket: str = "pocket-data-learning-dev",
    key: str = "analytics-modeled-data/parquet/dbt/web_explore_impressions_clicks_by_item_hour/"
               "data_0_0_0.snappy.parquet",
) -> int:
    """Downloads s3://bucket/key and returns its size in bytes.

    Args:
        bucket: the S3 bucket
        key: the object's key
    """
    data = s3_download(bucket, key)
    weir.get_run_logger().info("downloaded %d bytes from s3://%s/%s", len(data), bucket, key)
    return len(data)

"""The examples in examples/python: the seed's s3_download flow against moto's S3 (the official
AWS SDK, boto3, against a real local endpoint), the ETL, s3:// result storage, and their
weir.toml."""

import json
import os
import subprocess
import uuid

import pytest

from conftest import EXAMPLES, FLOWS, base_env, binary, result_of, weir_py

ENDPOINT = os.environ.get("WEIR_TEST_AWS_ENDPOINT")
AWS = {"AWS_ENDPOINT_URL": ENDPOINT or "", "AWS_ACCESS_KEY_ID": "test",
       "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
       "AWS_EC2_METADATA_DISABLED": "true"}
needs_s3 = pytest.mark.skipif(
    not ENDPOINT, reason="WEIR_TEST_AWS_ENDPOINT is not set (scripts/test-python.sh starts moto)")


@pytest.fixture
def bucket():
    import boto3

    s3 = boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    name = f"weir-test-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    yield s3, name
    for o in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=o["Key"])
    s3.delete_bucket(Bucket=name)


@needs_s3
def test_s3_download_flow(server, project, bucket):
    s3, name = bucket
    key = "analytics/data_0_0_0.snappy.parquet"
    s3.put_object(Bucket=name, Key=key, Body=b"x" * 1234)
    flows = str(EXAMPLES / "flows")
    r = weir_py(flows, "run", "s3_download_flow", "--param", f"bucket={name}", "--param",
                f"key={key}", server=server, env=AWS)
    assert r.code == 0, r
    assert r.value == 1234
    run = server.run(r.run_id)
    assert (run["state"], result_of(run)) == ("Completed", 1234)
    (t,) = server.task_runs(r.run_id)
    assert (t["task"], t["state"], t["attempt"]) == ("s3_download", "Completed", 1)
    assert [line["message"] for line in server.logs(r.run_id)] == [
        f"downloaded 1234 bytes from s3://{name}/{key}"]
    # A missing key is not worth retrying (retry_if): task and flow Failed at once.
    r = weir_py(flows, "run", "s3_download_flow", "--param", f"bucket={name}", "--param",
                "key=missing", server=server, env=AWS)
    assert r.code == 1, r
    (t,) = server.task_runs(r.run_id)
    assert (t["state"], t["attempt"]) == ("Failed", 1)
    assert "NoSuchKey" in t["message"]
    assert "NoSuchKey" in server.run(r.run_id)["state_message"]


@needs_s3
def test_results_and_cache_in_s3(bucket, tmp_path):
    s3, name = bucket
    marks = tmp_path / "marks"
    env = {**AWS, "WEIR_RESULT_STORAGE": f"s3://{name}/weir/results",
           "RESULTS_TEST_MARKS": str(marks), "WEIR_QUIET": "1"}
    run_id = "0190a000-0000-7000-8000-0000000000c3"
    results = str(FLOWS / "results.py")
    r = weir_py(results, "run", "persisted", "--param", "n=3",
                env={**env, "WEIR_FLOW_RUN_ID": run_id})
    assert (r.code, r.value) == (0, 3), r
    body = s3.get_object(Bucket=name, Key=f"weir/results/{run_id}/extract/0.json")["Body"]
    assert json.loads(body.read()) == [0, 1, 2]
    r = weir_py(results, "run", "persisted", "--param", "n=3",
                env={**env, "WEIR_FLOW_RUN_ID": run_id, "WEIR_ATTEMPT": "2",
                     "WEIR_RESUME": "1"})
    assert (r.code, r.value) == (0, 3), r
    assert marks.read_text().count("extract") == 1
    for _ in range(2):
        r = weir_py(results, "run", "cached", "--param", "region=east", env=env)
        assert r.code == 0, r
    assert marks.read_text().count("expensive east") == 1
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=name, Prefix="weir/results/cache/")
            ["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("weir/results/cache/expensive/")


def test_the_etl_example_runs_locally():
    r = weir_py(str(EXAMPLES / "flows" / "etl.py"), "run", "etl", "--param", "rows=40",
                "--param", "rounding=dollars")
    assert r.code == 0, r
    assert isinstance(r.value, int) and r.value % 100 == 0
    assert r.stderr.count("transform-") == 8  # four regions mapped, two reports each
    assert " north:" in r.stderr


def test_the_examples_weir_toml_deploys(server):
    env = base_env()
    env.update(WEIR_API_URL=server.url, WEIR_API_KEY=server.key)
    p = subprocess.run([str(binary("weir")), "deploy", "-f", str(EXAMPLES / "weir.toml"),
                        "--project", "pytest", "--plan"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "pytest/py-etl" in p.stdout and "pytest/py-s3-download" in p.stdout

"""Result storage: persisted task results and cache entries, laid out as the Rust SDK lays
them out so either SDK (and retry-from-failed) finds them:

* `{flow_run_id}/result.json` — a flow run's result, written when it reports to a server (the
  server keeps only `{"location", "size"}`);
* `{flow_run_id}/{task}/{call_index}.json` — a persisted result (the value as plain JSON);
* `cache/{task}/{sha256(cache_key)}.json` — a cache entry (`{"created_at", "key", "value"}`).

The root is `WEIR_RESULT_STORAGE`: `file:///abs/dir` or `s3://bucket/prefix` (through boto3, which
must then be installed; it honours `AWS_ENDPOINT_URL` and the usual AWS settings). Default:
`file://$WEIR_HOME/results`, `WEIR_HOME` defaulting to `./.weir`. Nothing is opened until a
task persists or caches.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from typing import Any, Optional, Tuple

from ._util import parse_rfc3339, rfc3339


class ResultStoreError(Exception):
    """Result storage could not be used."""

    _weir_plain = True


def default_home() -> str:
    return os.path.abspath(os.environ.get("WEIR_HOME") or ".weir")


class FileStore:
    def __init__(self, directory: str):
        self.dir = os.path.abspath(directory)
        self.url = "file://" + self.dir.rstrip("/")

    def put(self, key: str, data: bytes) -> None:
        path = os.path.join(self.dir, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)  # atomic, as object_store's local store writes
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def get(self, key: str) -> Optional[bytes]:
        try:
            with open(os.path.join(self.dir, key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None


class S3Store:
    def __init__(self, url: str):
        rest = url[len("s3://"):]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ResultStoreError(f"results URL {url!r} names no bucket (use s3://bucket/prefix)")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self._client = None

    def _s3(self):
        if self._client is None:
            try:
                import boto3  # type: ignore[import-not-found]
            except ImportError:
                raise ResultStoreError(
                    f"results URL {self.url} needs boto3: pip install boto3 (or weir[s3])"
                ) from None
            self._client = boto3.client("s3")
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        self._s3().put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get(self, key: str) -> Optional[bytes]:
        s3 = self._s3()
        try:
            return s3.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        except Exception as e:  # botocore ClientError with a 404
            code = getattr(e, "response", {}).get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise


class ResultStore:
    """Where results go; see the module docs."""

    def __init__(self, url: Optional[str] = None):
        url = (url if url is not None else os.environ.get("WEIR_RESULT_STORAGE", "")).strip()
        self._error: Optional[str] = None
        self._backend: Any = None
        if not url:
            self._backend = FileStore(os.path.join(default_home(), "results"))
        elif url.startswith("file://") and len(url) > len("file://"):
            self._backend = FileStore(url[len("file://"):])
        elif url.startswith("s3://"):
            try:
                self._backend = S3Store(url)
            except ResultStoreError as e:
                self._error = str(e)
        else:
            self._error = (f"unsupported results URL {url!r}: use file:///path or "
                           "s3://bucket/prefix")
        self.url = self._backend.url if self._backend else url

    def _b(self):
        if self._error:
            raise ResultStoreError(self._error)
        return self._backend

    def location(self, key: str) -> str:
        return f"{self.url}/{key}"

    @staticmethod
    def result_key(flow_run_id: str, task: str, index: int) -> str:
        return f"{flow_run_id}/{task}/{index}.json"

    def put(self, key: str, data: bytes) -> None:
        self._b().put(key, data)

    def get(self, key: str) -> Optional[bytes]:
        return self._b().get(key)


def fetch(location: str) -> Any:
    """The JSON value at a full `location` (`file:///…` or `s3://bucket/key`, as the server
    reports a flow run's result), read with this process's own credentials."""
    if location.startswith("file://"):
        path = location[len("file://"):]
        store = FileStore(os.path.dirname(path))
        raw = store.get(os.path.basename(path))
    elif location.startswith("s3://"):
        bucket, _, key = location[len("s3://"):].partition("/")
        raw = S3Store(f"s3://{bucket}").get(key)
    else:
        raise ResultStoreError(f"unsupported result location {location!r}")
    if raw is None:
        raise ResultStoreError(f"no result at {location}")
    return json.loads(raw)


def cache_entry_key(task: str, key: str) -> str:
    return f"cache/{task}/{hashlib.sha256(key.encode()).hexdigest()}.json"


def cache_lookup(store: ResultStore, task: str, key: str,
                 expiration: Optional[float]) -> Optional[Tuple[Any, str]]:
    """The cached value of `task` for `key` and its location, if present and not expired."""
    skey = cache_entry_key(task, key)
    try:
        raw = store.get(skey)
        if raw is None:
            return None
        entry = json.loads(raw)
        if expiration is not None and time.time() - parse_rfc3339(entry["created_at"]) > expiration:
            return None
        return entry["value"], store.location(skey)
    except (ResultStoreError, ValueError, KeyError, TypeError, OSError):
        return None


def cache_encode(key: str, value: Any) -> bytes:
    return json.dumps({"created_at": rfc3339(time.time()), "key": key, "value": value}).encode()

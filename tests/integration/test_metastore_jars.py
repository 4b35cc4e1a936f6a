"""The jars rtdi's metastore image adds are the bytes its Dockerfile pins, and run on its Java.

`docker build` refuses an ADD whose download does not match its `--checksum`, so a wrong sha256
in jobs/metastore/Dockerfile would only show when someone builds the image. This test downloads
each jar from the Dockerfile's own URL (Maven Central, cached under .cache/metastore/) and
checks: the sha256 is the pinned one; the class the metastore loads is there (PostgreSQL's
`Driver`, the GCS connector's `GoogleHadoopFileSystem` registered as a Hadoop FileSystem for
`gs://`); and its class files are Java 8 (major 52), the Java of Apache's Hive 4.0 image.
"""

from __future__ import annotations

import hashlib
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from test_metastore_image import metastore_jars

from plantools import ROOT

CACHE = ROOT / ".cache" / "metastore"
JAVA_8 = 52
LOADED = {
    "postgresql": "org/postgresql/Driver.class",
    "gcs-connector": "com/google/cloud/hadoop/fs/gcs/GoogleHadoopFileSystem.class",
}


def fetched(url: str) -> Path:
    """``url`` under .cache/metastore, downloaded once; a partial file never counts."""
    path = CACHE / url.rsplit("/", 1)[1]
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        with urllib.request.urlopen(url, timeout=300) as response, partial.open("wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        partial.rename(path)
    return path


@pytest.mark.parametrize("name", sorted(metastore_jars()))
def test_the_added_jar_is_the_pinned_bytes_and_runs_on_java_8(name):
    url, sha256, _ = metastore_jars()[name]
    path = fetched(url)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256, f"{url} is not the pinned jar"
    (loaded,) = [c for prefix, c in LOADED.items() if name.startswith(prefix)]
    with zipfile.ZipFile(path) as jar:
        header = jar.read(loaded)[:8]
        assert header[:4] == b"\xca\xfe\xba\xbe"
        assert int.from_bytes(header[6:8], "big") <= JAVA_8
        if name.startswith("gcs-connector"):
            services = jar.read("META-INF/services/org.apache.hadoop.fs.FileSystem").decode()
            assert "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem" in services.split()

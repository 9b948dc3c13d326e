"""A connection that drops while the published data set streams: ``datasets`` retries the read with its own
settings (``datasets.config.STREAMING_READ_MAX_RETRIES`` tries, ``STREAMING_READ_RETRY_INTERVAL`` seconds
apart) and the stream goes on with the same episodes; a drop that outlasts them stops it with an error naming the
repository, the shard and its file.

A local replica is read with Python's ``open`` (``datasets`` adds no retries to local paths), so here the
replica's README points its configs at a remote file system (an fsspec protocol over the same files) whose
reads time out as a stalled connection's do, through the same ``load_dataset`` call a hub run makes."""

import logging
import os

import datasets
import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from hubkit import write_replica
from huggingface_hub.utils import httpx  # the HTTP client the hub and datasets use
from jat_core.plugins import load_plugins
from jat_train.data import DataError, open_episodes
from test_collect import REFERENCE_SCHEMA

PROTOCOL = "flakyhub"
EPISODES = 12


class FlakyFileSystem(LocalFileSystem):
    """Local files behind a remote-looking protocol; the next ``FAILS`` reads time out as the hub's HTTP client
    does (``httpx.ReadTimeout`` naming the request's URL, one of the errors ``datasets`` retries)."""

    protocol = PROTOCOL
    FAILS = 0
    failed = 0

    @classmethod
    def _strip_protocol(cls, path):
        if path.startswith(PROTOCOL + ":"):  # URL joins may keep one slash of ``:///``: the path is absolute
            path = "/" + path[len(PROTOCOL) + 1:].lstrip("/")
        return super()._strip_protocol(path)

    def _open(self, path, mode="rb", **kwargs):
        opened = super()._open(path, mode, **kwargs)
        read = opened.read

        def flaky_read(*args, **kw):
            if FlakyFileSystem.FAILS > 0:
                FlakyFileSystem.FAILS -= 1
                FlakyFileSystem.failed += 1
                url = f"{PROTOCOL}://{path}"
                raise httpx.ReadTimeout("The read operation timed out", request=httpx.Request("GET", url))
            return read(*args, **kw)

        opened.read = flaky_read
        return opened


@pytest.fixture(autouse=True)
def flaky_protocol(monkeypatch):
    """The protocol registered, no failure pending, ``datasets``' retry interval short (its own setting)."""
    fsspec.register_implementation(PROTOCOL, FlakyFileSystem, clobber=True)
    monkeypatch.setattr(FlakyFileSystem, "FAILS", 0)
    monkeypatch.setattr(FlakyFileSystem, "failed", 0)
    monkeypatch.setattr(datasets.config, "STREAMING_READ_RETRY_INTERVAL", 0.01)
    monkeypatch.setattr(datasets.config, "STREAMING_READ_MAX_RETRIES", 3)


@pytest.fixture(scope="module")
def remote_replica(tmp_path_factory):
    """``(--data value, spec)``: a one-config replica (3 shards) whose README names its shards by remote URL."""
    spec = load_plugins().task("metaworld-reach")
    root = str(tmp_path_factory.mktemp("jat-dataset-remote"))
    write_replica(root, [spec], REFERENCE_SCHEMA, train=[1 + i % 2 for i in range(EPISODES)], test=(1,), shards=3)
    readme = os.path.join(root, "README.md")
    config = spec.dataset.config
    text = open(readme).read().replace(f"path: {config}/", f"path: {PROTOCOL}://{root}/{config}/")
    assert text.count(f"{PROTOCOL}://") == 2  # train and test
    with open(readme, "w") as f:
        f.write(text)
    return f"hub:{root}", spec


def _episodes(data, spec) -> list[int]:
    source = open_episodes(spec, data, shuffle_buffer=0)
    return [int(source.next_episode()[1]["rewards"][0]) // 1000 for _ in range(EPISODES)]


def test_a_dropped_connection_is_retried_and_the_stream_goes_on(remote_replica, caplog):
    data, spec = remote_replica
    expected = _episodes(data, spec)
    assert sorted(expected) == list(range(EPISODES))
    FlakyFileSystem.FAILS = 2  # fewer than STREAMING_READ_MAX_RETRIES in a row
    with caplog.at_level(logging.WARNING, logger="datasets"):
        assert _episodes(data, spec) == expected
    assert FlakyFileSystem.failed == 2
    retried = [r.getMessage() for r in caplog.records if "Retrying in" in r.getMessage()]
    assert len(retried) == 2 and "[1/3]" in retried[0] and "[2/3]" in retried[1], retried


def test_a_connection_down_past_the_retries_names_repository_and_shard(remote_replica):
    data, spec = remote_replica
    source = open_episodes(spec, data, shuffle_buffer=0)
    for _ in range(5):  # into the second shard (4 episodes each), which was read whole when it was opened
        source.next_episode()
    FlakyFileSystem.FAILS = 10**6
    with pytest.raises(DataError) as err:
        for _ in range(EPISODES):
            source.next_episode()
    message = str(err.value)
    assert FlakyFileSystem.failed == datasets.config.STREAMING_READ_MAX_RETRIES
    assert f"task {spec.name!r}" in message and f"from {data[len('hub:'):]!r}" in message, message
    assert f"(config {spec.dataset.config!r}, split 'train')" in message and "shard 2 of 3" in message, message
    shard = f"{data[len('hub:'):]}/{spec.dataset.config}/train-00002-of-00003.parquet')"  # its URL, as httpx writes it
    assert f"(file '{PROTOCOL}:" in message and shard in message and "Server Disconnected" in message, message

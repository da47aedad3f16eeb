"""TLS: every parallel entry point reaches a TLS scheduler with ``security=``, and none without its certificates.

The cluster is real: a `dask scheduler` and two `dask worker` processes on
127.0.0.1 speaking TLS with throwaway certificates (a CA and one certificate
it signed, made here with the cryptography package).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os

import dask
import pytest
from distributed.security import Security
from iterable.convert.core import bulk_convert as upstream_bulk_convert
from iterable.helpers.detect import open_iterable
from iterable.pipeline import pipeline as upstream_pipeline

import iterable_dask
from iterable_dask import ClusterConnectionError
from tests.conftest import real_cluster
from tests.helpers import in_thread, sequential, temporaries

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

pytestmark = pytest.mark.slow  # a TLS cluster of real processes for the module


def make_certificates(folder: str, name: str = "dask") -> dict[str, str]:
    """A throwaway CA and a certificate it signed for 127.0.0.1, as PEM files: ``{"ca", "cert", "key"}``."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
        b = x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
        b = b.serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        return b.not_valid_after(now + datetime.timedelta(days=1))

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}-test-ca")])
    ca = builder(ca_name, ca_name, ca_key).add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    ca_cert = ca.sign(ca_key, hashes.SHA256())
    host = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = builder(subject, ca_name, key).add_extension(host, False).sign(ca_key, hashes.SHA256())
    paths = {part: os.path.join(folder, f"{name}-{part}.pem") for part in ("ca", "cert", "key")}
    with open(paths["ca"], "wb") as f:
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["cert"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    pem = serialization.PrivateFormat.PKCS8
    with open(paths["key"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, pem, serialization.NoEncryption()))
    return paths


def security_of(paths: dict[str, str]) -> Security:
    return Security(
        tls_ca_file=paths["ca"], tls_client_cert=paths["cert"], tls_client_key=paths["key"], require_encryption=True
    )


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """``(address, security, paths)`` of a TLS scheduler with two TLS workers, all real processes."""
    folder = str(tmp_path_factory.mktemp("tls"))
    paths = make_certificates(folder)
    tls = ["--tls-ca-file", paths["ca"], "--tls-cert", paths["cert"], "--tls-key", paths["key"]]
    security = security_of(paths)
    with real_cluster(folder, 2, protocol="tls", scheduler_args=tls, worker_args=tls, security=security) as real:
        yield real.address, security, paths


def _csv_files(folder, n: int = 3, rows: int = 40) -> list[str]:
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(n):
        path = os.path.join(folder, f"f{i}.csv")
        with open(path, "w", encoding="utf8") as f:
            f.write("id,name,score\n")
            f.writelines(f"{i * rows + r},name {r},{r * 1.5}\n" for r in range(rows))
        paths.append(path)
    return paths


def _jsonl(path, n: int) -> str:
    with open(path, "w", encoding="utf8") as f:
        f.writelines(json.dumps({"id": i, "word": f"w{i % 7}"}) + "\n" for i in range(n))
    return str(path)


def tag(record, state):
    return {**record, "tagged": True}


def _outputs(folder) -> dict[str, list]:
    return {name: sequential(os.path.join(folder, name)) for name in sorted(os.listdir(folder))}


def test_bulk_convert_and_pipeline_over_tls(tls_cluster, tmp_path):
    address, security, _ = tls_cluster
    _csv_files(tmp_path / "in")
    result = iterable_dask.bulk_convert(
        str(tmp_path / "in" / "*.csv"), str(tmp_path / "out"), to_ext="jsonl",
        parallel=True, scheduler=address, security=security,
    )  # fmt: skip
    upstream_bulk_convert(str(tmp_path / "in" / "*.csv"), str(tmp_path / "expected"), to_ext="jsonl")
    assert result.successful_files == 3 and result.failed_files == 0
    assert _outputs(tmp_path / "out") == _outputs(tmp_path / "expected")

    src = _jsonl(tmp_path / "src.jsonl", 500)
    out = iterable_dask.pipeline(
        src, str(tmp_path / "p.jsonl"), tag, parallel=True, parallel_mode="process", chunk_size=100,
        scheduler=address, security=security,
    )  # fmt: skip
    with open_iterable(src) as source, open_iterable(str(tmp_path / "expected.jsonl"), mode="w") as dest:
        upstream_pipeline(source, dest, tag)
    assert out.parallel_mode == "process" and out.rec_count == 500
    assert sequential(str(tmp_path / "p.jsonl")) == sequential(str(tmp_path / "expected.jsonl"))


def test_every_entry_point_takes_security(tls_cluster, tmp_path):
    address, security, _ = tls_cluster
    where = {"scheduler": address, "security": security}
    files = _csv_files(tmp_path / "in", n=2, rows=30)
    expected = [r for path in files for r in sequential(path)]

    bag = iterable_dask.read_bag(files)
    assert iterable_dask.compute(bag.count(), **where) == (60,)
    with iterable_dask.parallel_read(files, ordered=True, **where) as reader:
        assert reader.mode == "process" and list(reader) == expected
    written = iterable_dask.write_bag(bag, str(tmp_path / "bag"), to_ext="jsonl", **where)
    assert [r for path in written for r in sequential(path)] == expected
    files_out = iterable_dask.parallel_write(iter(expected), str(tmp_path / "pw"), records_per_file=25, **where)
    assert [r for f in files_out for r in sequential(f.path)] == expected
    converted = iterable_dask.convert(files[0], str(tmp_path / "one.jsonl"), parallel=True, **where)
    assert converted.rows_out == 30 and sequential(str(tmp_path / "one.jsonl")) == sequential(files[0])


def test_dask_tls_settings_stand_in_for_security(tls_cluster, tmp_path):
    """Without ``security=``, Dask's own ``distributed.comm.tls.*`` settings are used, as distributed.Client does."""
    address, _, paths = tls_cluster
    files = _csv_files(tmp_path / "in", n=1, rows=25)
    settings = {
        "distributed.comm.tls.ca-file": paths["ca"],
        "distributed.comm.tls.client.cert": paths["cert"],
        "distributed.comm.tls.client.key": paths["key"],
    }
    with dask.config.set(settings):
        assert iterable_dask.compute(iterable_dask.read_bag(files).count(), scheduler=address) == (25,)


def _refused(call, address: str) -> ClusterConnectionError:
    """Run ``call`` in a thread: it must raise ClusterConnectionError naming ``address``, within a bounded time."""
    thread, outcome = in_thread(call)
    thread.join(120)
    assert not thread.is_alive(), "the call did not fail within 120 s"
    assert len(outcome) == 1 and isinstance(outcome[0], ClusterConnectionError), outcome
    assert address in str(outcome[0])
    return outcome[0]


def test_a_client_without_the_certificates_is_refused(tls_cluster, tmp_path):
    address, _, _ = tls_cluster
    _csv_files(tmp_path / "in", n=2)
    src = _jsonl(tmp_path / "src.jsonl", 50)

    def convert(**where):
        return lambda: iterable_dask.bulk_convert(
            str(tmp_path / "in" / "*.csv"), str(tmp_path / "out"), to_ext="jsonl", parallel=True, **where
        )

    def run_pipeline(**where):
        return lambda: iterable_dask.pipeline(
            src, str(tmp_path / "p.jsonl"), tag, parallel=True, parallel_mode="process", **where
        )

    # No certificates at all: a clear error before any connection attempt.
    error = _refused(convert(scheduler=address), address)
    assert "security=" in str(error)
    assert "security=" in str(_refused(run_pipeline(scheduler=address), address))
    # Certificates of another CA: the scheduler refuses the handshake.
    other = security_of(make_certificates(str(tmp_path), name="stranger"))
    _refused(convert(scheduler=address, security=other), address)
    _refused(run_pipeline(scheduler=address, security=other), address)
    # Plain TCP to the TLS port.
    plain = address.replace("tls://", "tcp://")
    _refused(convert(scheduler=plain), plain)
    # Nothing was written.
    assert not os.path.exists(tmp_path / "p.jsonl")
    assert not os.path.exists(tmp_path / "out") or os.listdir(tmp_path / "out") == []
    assert temporaries(tmp_path) == []


def test_the_command_line_over_tls(tls_cluster, tmp_path):
    """``iterable-dask bulk-convert --scheduler tls://... --tls-*``: converted; without the certificates, exit 2."""
    from tests.cli_helpers import run_cli, summary

    address, _, paths = tls_cluster
    files = _csv_files(tmp_path / "in", n=2)
    tls = ["--tls-ca-file", paths["ca"], "--tls-cert", paths["cert"], "--tls-key", paths["key"]]
    args = ["bulk-convert", str(tmp_path / "in"), str(tmp_path / "out"), "--to", "jsonl", "--scheduler", address]
    completed = run_cli(*args, *tls, "--json")
    assert completed.returncode == 0, completed.stderr
    assert summary(completed)["successful_files"] == 2
    for path in files:
        assert sequential(str(tmp_path / "out" / os.path.basename(path).replace(".csv", ".jsonl"))) == sequential(path)
    refused = run_cli(*args[:2], str(tmp_path / "refused"), *args[3:])
    assert refused.returncode == 2 and "security=" not in refused.stdout
    assert address in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "refused").exists() or os.listdir(tmp_path / "refused") == []

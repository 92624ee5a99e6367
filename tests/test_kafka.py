"""Kafka and TLS with a real broker (tansu) behind a real stunnel for mutual TLS, and
confluent-kafka as the client."""

import json
import os
import stat
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from cryptography import x509

from hops import kafka, tls
from hops_jupyter.core import broker
from tests.conftest import free_port, require_system

pytestmark = pytest.mark.kafka


@pytest.fixture
def embedded_broker(hops_home):
    require_system("stunnel4", "keytool")
    info = broker.start()
    yield info
    broker.stop()


def consume(config: dict, topic: str, count: int, timeout: float = 60) -> list:
    consumer = Consumer(config)
    consumer.subscribe([topic])
    got, deadline = [], time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            got.append(msg)
    finally:
        consumer.close()
    return got


# --- TLS material --------------------------------------------------------------------------


def test_embedded_material_is_generated_once_and_protected(hops_home):
    paths = {
        "ca": tls.get_ca_chain_location(),
        "cert": tls.get_client_certificate_location(),
        "key": tls.get_client_key_location(),
        "keystore": tls.get_key_store(),
        "truststore": tls.get_trust_store(),
    }
    for name in ("key", "keystore"):
        assert stat.S_IMODE(os.stat(paths[name]).st_mode) == 0o600, name
    ca = x509.load_pem_x509_certificate(open(paths["ca"], "rb").read())
    cert = x509.load_pem_x509_certificate(open(paths["cert"], "rb").read())
    cert.verify_directly_issued_by(ca)
    assert cert.subject.rfc4514_string().startswith("CN=demo__")
    assert tls.get_key_store_cert() == open(paths["cert"], "rb").read()
    mtime = os.stat(paths["ca"]).st_mtime
    assert tls.get_ca_chain_location() == paths["ca"] and os.stat(paths["ca"]).st_mtime == mtime
    assert (
        tls.get_key_store_pwd() == tls.get_trust_store_pwd() and len(tls.get_key_store_pwd()) >= 20
    )


def test_stores_are_readable_by_keytool(hops_home):
    require_system("keytool")
    password = tls.get_key_store_pwd()
    keystore = subprocess.run(
        ["keytool", "-list", "-keystore", tls.get_key_store(), "-storetype", "PKCS12", "-storepass", password],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "PrivateKeyEntry" in keystore
    truststore = subprocess.run(
        ["keytool", "-list", "-keystore", tls.get_trust_store(), "-storetype", "PKCS12", "-storepass", password],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "trustedCertEntry" in truststore


def test_cluster_material_from_java_stores(hops_home, tmp_path, monkeypatch):
    """A Hops container has JKS stores and material_passwd in its working directory: the PEM
    files confluent-kafka needs are derived from them."""
    require_system("keytool")
    password = tls.get_key_store_pwd()
    container = tmp_path / "container"
    container.mkdir()
    for source, target in (
        (tls.get_key_store(), "k_certificate"),
        (tls.get_trust_store(), "t_certificate"),
    ):
        subprocess.run(
            ["keytool", "-importkeystore", "-srckeystore", source, "-srcstoretype", "PKCS12",
             "-srcstorepass", password, "-destkeystore", str(container / target), "-deststoretype", "JKS",
             "-deststorepass", password, "-noprompt"],
            check=True, capture_output=True,
        )  # fmt: skip
    (container / "material_passwd").write_text(password)
    original_cert = open(tls.get_client_certificate_location(), "rb").read()
    monkeypatch.chdir(container)
    assert tls.get_key_store() == str(container / "k_certificate")
    assert tls.get_client_certificate_location() == str(container / "client.pem")
    assert open(tls.get_client_certificate_location(), "rb").read() == original_cert
    assert x509.load_pem_x509_certificate(open(tls.get_ca_chain_location(), "rb").read())


def test_material_directory_and_missing_files(hops_home, tmp_path, monkeypatch):
    monkeypatch.setenv("MATERIAL_DIRECTORY", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="MATERIAL_DIRECTORY .*nope"):
        tls.get_ca_chain_location()
    material = tmp_path / "material"
    material.mkdir()
    (material / "ca_chain.pem").write_text("x")
    monkeypatch.setenv("MATERIAL_DIRECTORY", str(material))
    assert tls.get_ca_chain_location() == str(material / "ca_chain.pem")
    with pytest.raises(FileNotFoundError, match="'client.pem' is missing"):
        tls.get_client_certificate_location()


# --- the broker ----------------------------------------------------------------------------


def test_seed_kafka_section_runs_as_written(embedded_broker):
    """The seed's example: the default config straight into confluent-kafka's Producer and
    Consumer, 1,000 messages over mutual TLS."""
    topic = "test"
    kafka.create_topic(topic)
    config = kafka.get_kafka_default_config()
    producer = Producer(config)
    delivered = []
    for i in range(1000):
        producer.produce(
            topic, f"message {i}", "key", callback=lambda err, msg: delivered.append(err)
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    assert delivered.count(None) == 1000
    messages = consume(config, topic, 1000)
    assert [m.value().decode() for m in messages] == [f"message {i}" for i in range(1000)]
    assert config["bootstrap.servers"] == embedded_broker.endpoint == kafka.get_broker_endpoints()
    assert kafka.get_broker_endpoints_list() == [embedded_broker.endpoint]
    assert kafka.get_security_protocol() == "SSL"
    assert topic in kafka.list_topics()


def _refused(config: dict) -> None:
    admin = AdminClient(config)
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)


def test_clients_without_the_project_certificate_are_refused(embedded_broker, tmp_path):
    base = {"bootstrap.servers": embedded_broker.endpoint, "security.protocol": "SSL",
            "ssl.ca.location": tls.get_ca_chain_location()}  # fmt: skip
    _refused(base)  # no client certificate at all
    _refused({"bootstrap.servers": embedded_broker.endpoint})  # plaintext to the TLS port
    other_ca = tls.make_ca("some other CA")
    intruder = tls.make_certificate(other_ca, "demo__mallory")
    (tmp_path / "cert.pem").write_bytes(intruder.cert_pem())
    (tmp_path / "key.pem").write_bytes(intruder.key_pem())
    _refused({**base, "ssl.certificate.location": str(tmp_path / "cert.pem"),
              "ssl.key.location": str(tmp_path / "key.pem")})  # fmt: skip
    good = kafka.get_kafka_default_config()
    good.pop("group.id")
    metadata = AdminClient(good).list_topics(timeout=10)  # the project's own certificate passes
    assert [f"{b.host}:{b.port}" for b in metadata.brokers.values()] == [embedded_broker.endpoint]


def test_schemas_avro_and_topic_errors(embedded_broker):
    schema = {"type": "record", "name": "Reading",
              "fields": [{"name": "sensor", "type": "string"}, {"name": "value", "type": "double"}]}  # fmt: skip
    kafka.create_topic("readings", schema=schema, partitions=2, validate=True)
    assert json.loads(kafka.get_schema("readings")) == schema
    record = {"sensor": "t1", "value": 21.5}
    config = kafka.get_kafka_default_config()
    producer = Producer(
        {
            k: v
            for k, v in config.items()
            if k not in ("group.id", "session.timeout.ms", "auto.offset.reset")
        }
    )
    producer.produce("readings", kafka.encode_avro(record, kafka.get_schema("readings")))
    assert producer.flush(10) == 0
    (msg,) = consume(config, "readings", 1)
    parsed = kafka.convert_json_schema_to_avro(kafka.get_schema("readings"))
    assert kafka.parse_avro_msg(msg.value(), parsed) == record
    plain = kafka.encode_avro(record, parsed, container=False)
    assert kafka.parse_avro_msg(plain, parsed) == record  # Hops-style values decode too
    # With validate=True the broker checks records against the schema: mismatches are refused.
    for bad in (b"not avro", plain, kafka.encode_avro({"other": 1}, {"type": "record", "name": "O",
                "fields": [{"name": "other", "type": "int"}]})):  # fmt: skip
        errors = []
        producer.produce(
            "readings", bad, on_delivery=lambda err, msg, errors=errors: errors.append(err)
        )
        producer.flush(10)
        assert errors and errors[0] is not None and errors[0].name() == "INVALID_RECORD"
    with pytest.raises(
        KeyError,
        match="Topic 'nope' has no schema in this project; topics with schemas: \\['readings'\\]",
    ):
        kafka.get_schema("nope")
    with pytest.raises(KeyError, match="Unknown topic 'nope'"):
        kafka.delete_topic("nope")
    with pytest.raises(ValueError, match="Not a valid Avro schema"):
        kafka.create_topic("bad", schema={"type": "no-such-type"})
    with pytest.raises(ValueError, match="Bad topic name 'a b'"):
        kafka.create_topic("a b")
    kafka.delete_topic("readings")
    assert "readings" not in kafka.list_topics()


def _producer(config: dict) -> Producer:
    consumer_only = ("group.id", "session.timeout.ms", "auto.offset.reset")
    return Producer({k: v for k, v in config.items() if k not in consumer_only})


def _produce(producer: Producer, topic: str, value) -> str | None:
    """Produce one value; the delivery error's name, or None when the broker took it."""
    errors = []
    producer.produce(topic, value, on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    assert errors, "no delivery report"
    return None if errors[0] is None else errors[0].name()


SCHEMA = {"type": "record", "name": "Reading",
          "fields": [{"name": "sensor", "type": "string"}, {"name": "value", "type": "double"}]}  # fmt: skip


def test_json_to_a_topic_with_a_schema_is_accepted_by_default(embedded_broker):
    """As on Hopsworks, a topic's schema does not make the broker refuse other values: the
    seed's examples produce JSON strings to topics created with an Avro schema."""
    kafka.create_topic("events", schema=SCHEMA)
    assert json.loads(kafka.get_schema("events")) == SCHEMA
    config = kafka.get_kafka_default_config()
    producer = _producer(config)
    reading = json.dumps({"sensor": "t1", "value": 21.5})
    assert _produce(producer, "events", reading) is None
    assert _produce(producer, "events", b"not avro at all") is None
    container = kafka.encode_avro({"sensor": "t2", "value": 1.0}, kafka.get_schema("events"))
    assert _produce(producer, "events", container) is None
    values = [m.value() for m in consume(config, "events", 3)]
    assert values == [reading.encode(), b"not avro at all", container]
    assert not broker.validates("events")


def test_validation_is_opt_in_per_topic(embedded_broker):
    config = kafka.get_kafka_default_config()
    producer = _producer(config)
    reading = json.dumps({"sensor": "t1", "value": 21.5})
    kafka.create_topic("checked", schema=SCHEMA, validate=True)
    kafka.create_topic("free", schema=SCHEMA)
    assert _produce(producer, "checked", reading) == "INVALID_RECORD"
    assert (
        _produce(producer, "checked", kafka.encode_avro({"sensor": "a", "value": 1.0}, SCHEMA))
        is None
    )
    assert _produce(producer, "free", reading) is None
    # Created again without validate=True, the topic accepts anything (no broker restart).
    kafka.delete_topic("checked")
    kafka.create_topic("checked", schema=SCHEMA)
    assert _produce(producer, "checked", reading) is None
    # The choice is kept in the project: a restarted broker validates what opted in, only.
    kafka.create_topic("checked2", schema=SCHEMA, validate=True)
    broker.stop()
    broker.start()
    assert sorted(p.name for p in broker.registry_dir().glob("*.avsc")) == ["checked2.avsc"]
    producer = _producer(kafka.get_kafka_default_config())
    kafka.create_topic("checked2", schema=SCHEMA, validate=True)
    kafka.create_topic("free", schema=SCHEMA)
    assert _produce(producer, "checked2", reading) == "INVALID_RECORD"
    assert _produce(producer, "free", reading) is None
    with pytest.raises(ValueError, match="validate=True checks records against a schema"):
        kafka.create_topic("no-schema", validate=True)


def test_spark_option_names(embedded_broker):
    options = kafka.get_spark_kafka_options()
    assert options["kafka.bootstrap.servers"] == embedded_broker.endpoint
    assert options["kafka.security.protocol"] == "SSL"
    assert options["kafka.ssl.truststore.location"] == tls.get_trust_store()
    assert options["kafka.ssl.keystore.password"] == tls.get_key_store_pwd()


# --- failing fast --------------------------------------------------------------------------


def test_bad_configuration_fails_fast(hops_home, tmp_path, monkeypatch):
    start = time.monotonic()
    with pytest.raises(ConnectionError, match="hops-jupyter kafka start"):
        kafka.get_kafka_default_config()  # embedded default, broker not started
    port = free_port()
    monkeypatch.setenv("KAFKA_BROKERS", f"INTERNAL://127.0.0.1:{port}")
    assert kafka.get_broker_endpoints() == f"127.0.0.1:{port}"
    with pytest.raises(ConnectionError, match=f"No Kafka broker answers at 127.0.0.1:{port}"):
        kafka.get_kafka_default_config()
    material = tmp_path / "material"
    material.mkdir()
    monkeypatch.setenv("MATERIAL_DIRECTORY", str(material))
    with pytest.raises(FileNotFoundError, match="'ca_chain.pem' is missing"):
        kafka.get_kafka_default_config()
    assert time.monotonic() - start < 10


def test_cli_start_status_stop(hops_home, capsys):
    require_system("stunnel4")
    from hops_jupyter import cli

    try:
        assert cli.main(["kafka", "start"]) == 0
        assert "mutual TLS" in capsys.readouterr().out
        assert cli.main(["kafka", "status"]) == 0
        info = broker.status()
        assert info is not None and os.path.exists(f"/proc/{info.tansu_pid}")
    finally:
        assert cli.main(["kafka", "stop"]) == 0
    assert cli.main(["kafka", "status"]) == 1
    assert broker.status() is None

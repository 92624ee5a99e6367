"""The seed's `kafka` API: broker endpoints, a ready confluent-kafka configuration over mutual
TLS, Spark's option names, Avro helpers, and topic management with schemas kept in the project.

On a cluster `KAFKA_BROKERS` names the brokers; in the embedded default the project's own broker
(`hops-jupyter kafka start`) is used.
"""

from __future__ import annotations

import io
import json
import socket
from typing import Any

from hops_jupyter.core import broker, project, tls

_PREFIXES = ("INTERNAL://", "EXTERNAL://", "SSL://", "PLAINTEXT://")


def get_broker_endpoints() -> str:
    """Broker endpoints, comma separated: `$KAFKA_BROKERS` on a cluster, else the embedded
    broker's TLS endpoint."""
    configured = project.current().kafka_brokers
    if configured:
        endpoints = configured
        for prefix in _PREFIXES:
            endpoints = endpoints.replace(prefix, "")
        return endpoints
    info = broker.status()
    if info is None:
        reason = broker.unavailable_reason()
        if reason is not None:
            raise ConnectionError(
                f"No Kafka broker: {reason}; or set KAFKA_BROKERS to a cluster's brokers"
            )
        raise ConnectionError(
            "No Kafka broker: start the embedded one with `hops-jupyter kafka start` "
            "(make run does), or set KAFKA_BROKERS to a cluster's brokers"
        )
    return info.endpoint


def get_broker_endpoints_list() -> list[str]:
    """Broker endpoints as a list."""
    return get_broker_endpoints().split(",")


def get_security_protocol() -> str:
    """The protocol clients use: mutual TLS."""
    return "SSL"


def _check_reachable(endpoints: list[str], timeout: float = 3.0) -> None:
    """Fail in seconds, naming the endpoints, instead of librdkafka retrying for 30 s and more."""
    errors = []
    for endpoint in endpoints:
        host, _, port = endpoint.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return
        except (OSError, ValueError) as err:
            errors.append(f"{endpoint} ({err})")
    raise ConnectionError(f"No Kafka broker answers at {', '.join(errors)}")


def get_kafka_default_config(check: bool = True) -> dict[str, str]:
    """A confluent-kafka configuration for the project's brokers over mutual TLS. Missing
    certificate files or unreachable brokers fail here, with their names (check=False skips
    the connection test)."""
    endpoints = get_broker_endpoints()
    config = {
        "bootstrap.servers": endpoints,
        "security.protocol": get_security_protocol(),
        "ssl.ca.location": tls.get_ca_chain_location(),
        "ssl.certificate.location": tls.get_client_certificate_location(),
        "ssl.key.location": tls.get_client_key_location(),
        "group.id": f"{project.current().project_user}_consumer",
        # A consumer that starts after the producer still reads what was produced.
        "auto.offset.reset": "earliest",
    }
    if not project.current().kafka_brokers:
        # The embedded broker completes a group join only after a share of the session
        # timeout: Kafka's minimum (6 s) makes `subscribe` deliver within seconds.
        config["session.timeout.ms"] = "6000"
    if check:
        _check_reachable(endpoints.split(","))
    return config


def get_spark_kafka_options() -> dict[str, str]:
    """The options the seed passes to Spark's kafka source and sink (`.options(**...)`)."""
    return {
        "kafka.bootstrap.servers": get_broker_endpoints(),
        "kafka.security.protocol": get_security_protocol(),
        "kafka.ssl.truststore.location": tls.get_trust_store(),
        "kafka.ssl.truststore.password": tls.get_trust_store_pwd(),
        "kafka.ssl.truststore.type": "PKCS12",
        "kafka.ssl.keystore.location": tls.get_key_store(),
        "kafka.ssl.keystore.password": tls.get_key_store_pwd(),
        "kafka.ssl.keystore.type": "PKCS12",
        "kafka.ssl.key.password": tls.get_trust_store_pwd(),
        "kafka.ssl.endpoint.identification.algorithm": "",
    }


# --- Avro ----------------------------------------------------------------------------------


def convert_json_schema_to_avro(json_schema: str | dict[str, Any]) -> Any:
    """Parse an Avro schema written as JSON (a string or a dict)."""
    import fastavro

    schema = json.loads(json_schema) if isinstance(json_schema, str) else json_schema
    try:
        return fastavro.parse_schema(schema)
    except Exception as err:  # fastavro raises several types for bad schemas
        raise ValueError(f"Not a valid Avro schema: {err}") from err


def _parsed(schema: Any) -> Any:
    if isinstance(schema, dict) and "__fastavro_parsed" in schema:
        return schema
    return convert_json_schema_to_avro(schema)


def encode_avro(record: dict[str, Any], schema: Any, container: bool = True) -> bytes:
    """Serialize one record with a schema (parsed, or its JSON). By default as an Avro object
    container, the form the embedded broker validates; container=False gives plain Avro
    binary, as schema-registry-less Hopsworks producers write it."""
    import fastavro

    parsed, out = _parsed(schema), io.BytesIO()
    if container:
        fastavro.writer(out, parsed, [record])
    else:
        fastavro.schemaless_writer(out, parsed, record)
    return out.getvalue()


def parse_avro_msg(msg: bytes, avro_schema: Any) -> dict[str, Any]:
    """Decode one Avro message value with the topic's schema: an object container (what
    `encode_avro` and the embedded broker use) or plain Avro binary (as in Hops)."""
    import fastavro

    parsed = _parsed(avro_schema)
    if msg[:4] == b"Obj\x01":
        records = list(fastavro.reader(io.BytesIO(msg), reader_schema=parsed))
        if len(records) != 1:
            raise ValueError(f"Expected one record in the Avro container, found {len(records)}")
        return records[0]
    return fastavro.schemaless_reader(io.BytesIO(msg), parsed)


# --- topics and schemas --------------------------------------------------------------------


def _admin() -> Any:
    from confluent_kafka.admin import AdminClient

    config = get_kafka_default_config()
    config.pop("group.id")
    return AdminClient(config)


def get_schema(topic: str) -> str:
    """The topic's Avro schema (JSON text), as created with `create_topic(..., schema=...)`."""
    path = broker.schema_dir() / f"{topic}.avsc"
    if not path.is_file():
        known = sorted(p.stem for p in broker.schema_dir().glob("*.avsc"))
        raise KeyError(
            f"Topic {topic!r} has no schema in this project; topics with schemas: {known}"
        )
    return path.read_text()


def create_topic(name: str, schema: str | dict[str, Any] | None = None, partitions: int = 1,
                 timeout: float = 15.0, *, validate: bool = False) -> None:  # fmt: skip
    """Create a topic; with `schema` (Avro JSON) the schema is checked and kept in the project
    (`Resources/kafka/<topic>.avsc`, read back with `get_schema`). Records are not checked
    against it, as on Hopsworks (JSON strings to an Avro topic are fine), unless
    `validate=True`: then the embedded broker refuses values that are not Avro object
    containers of that schema (`INVALID_RECORD`). On a cluster (`KAFKA_BROKERS`) validation is
    the brokers' own business and `validate` is ignored."""
    from confluent_kafka.admin import NewTopic

    if not name or not all(c.isalnum() or c in "._-" for c in name):
        raise ValueError(f"Bad topic name {name!r}: use letters, digits, '.', '_' and '-'")
    if not isinstance(partitions, int) or partitions < 1:
        raise ValueError(f"partitions must be a positive integer, got {partitions!r}")
    if validate and schema is None:
        raise ValueError(f"validate=True checks records against a schema: give {name!r} one")
    text = None
    if schema is not None:
        text = schema if isinstance(schema, str) else json.dumps(schema)
        convert_json_schema_to_avro(text)
        target = broker.schema_dir() / f"{name}.avsc"
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text)
        tmp.replace(target)
    if not project.current().kafka_brokers:
        broker.set_validation(name, text if validate else None)
    admin = _admin()  # keep the client alive until its future completes
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    futures[name].result(timeout=timeout)


def delete_topic(name: str, timeout: float = 15.0) -> None:
    """Delete a topic and its schema."""
    if name not in list_topics():
        raise KeyError(f"Unknown topic {name!r}; topics: {list_topics()}")
    admin = _admin()
    admin.delete_topics([name])[name].result(timeout=timeout)
    (broker.schema_dir() / f"{name}.avsc").unlink(missing_ok=True)
    if not project.current().kafka_brokers:
        broker.set_validation(name, None)


def list_topics(timeout: float = 10.0) -> list[str]:
    """The brokers' topics (internal ones hidden)."""
    metadata = _admin().list_topics(timeout=timeout)
    return sorted(t for t in metadata.topics if not t.startswith("__"))

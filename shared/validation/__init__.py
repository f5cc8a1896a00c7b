"""Event validation: the Avro event catalogue, the Confluent wire format and a Schema Registry client."""

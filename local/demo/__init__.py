"""`smartgrid demo`: a simulated fleet of grid sensors and smart meters as the platform's workload.

profiles (BDEW load shapes, PV), fleet (devices and their readings), anomalies and malformed
(what is injected), messages (CloudEvents and Kafka records), senders (HTTP, Kafka), tally,
observe (what the platform stored and raised), summary, workload and runner (`demo`).
"""
